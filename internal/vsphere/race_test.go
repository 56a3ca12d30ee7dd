//go:build race

package vsphere

// budgetScale stretches the watch's 2 s budget under the race detector,
// which slows the simulator's property collector (it re-collects its whole
// view on every change) several times over. The budget itself is checked
// by the ordinary build, as scripts/test runs it.
const budgetScale = 4
