// Package gen writes synthetic estates for benchmarks and demos (`vguard
// gen`): a realistic estate of a given size, with clusters of hypervisors in
// racks, zones with several VLANs, firewalls, teams owning apps, services,
// datastores, master images and VMs with identities, in which most VMs are
// clean and every estate check fires on a small sprinkle of objects. The same
// Options always give the same bytes.
package gen

import (
	"errors"
	"io"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Options size the estate.
type Options struct {
	// VMs is the number of VMs (>= 0).
	VMs int
	// Hypervisors is the number of hypervisors; 0 means DefaultHypervisors(VMs).
	Hypervisors int
	// Seed selects the estate: the same seed gives the same bytes.
	Seed int64
}

// Estate returns the estate and policy in memory.
func Estate(opts Options) (*estate.Estate, *estate.Policy) { return &estate.Estate{}, estate.DefaultPolicy() }

// Write writes the estate as JSON to w.
func Write(w io.Writer, opts Options) error { return errors.New("gen: not implemented yet") }

// WriteDir writes the estate, a policy and side files to dir.
func WriteDir(dir string, opts Options) error { return errors.New("gen: not implemented yet") }
