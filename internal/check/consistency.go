package check

func consistencyChecks() []*Check { return nil }
