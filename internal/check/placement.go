package check

func placementChecks() []*Check { return nil }
