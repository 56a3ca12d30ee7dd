package check

func availabilityChecks() []*Check { return nil }
