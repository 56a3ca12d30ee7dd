//go:build !race

package vsphere

// budgetScale is 1: the 2 s budget as it is (see race_test.go).
const budgetScale = 1
