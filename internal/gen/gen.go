// Package gen writes synthetic estates for benchmarks and demos (`vguard
// gen`): a realistic estate of a given size, with clusters of hypervisors in
// racks, zones with several VLANs, firewalls, teams owning apps, services,
// datastores, master images and VMs with identities, in which most VMs are
// clean and every estate check fires on a small sprinkle of objects. The same
// Options always give the same bytes.
//
// The estate is built in memory first (Estate) and then written, so that the
// document on disk and the estate a benchmark builds directly are the same
// facts. Violations are not noise: each is one mistake an administrator
// makes (a typo'd VLAN, a clone that kept its identity, a VM dropped on the
// wrong host, a patch applied by hand to one member of a farm), applied to a
// few objects that are otherwise clean.
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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

// DefaultHypervisors is the number of hypervisors used when Options leave it
// at 0: one per 50 VMs, and never fewer than 20, so that every kind of cluster
// exists.
func DefaultHypervisors(vms int) int { return max(20, vms/50) }

// Validate reports options that cannot make an estate.
func (o Options) Validate() error {
	if o.VMs < 0 {
		return fmt.Errorf("the number of VMs must not be negative (got %d)", o.VMs)
	}
	if o.Hypervisors < 0 {
		return fmt.Errorf("the number of hypervisors must not be negative (got %d)", o.Hypervisors)
	}
	return nil
}

func (o Options) resolved() Options {
	o.VMs = max(o.VMs, 0)
	if o.Hypervisors <= 0 {
		o.Hypervisors = DefaultHypervisors(o.VMs)
	}
	return o
}

// Estate returns in memory the estate that Write writes and the policy that
// WriteDir writes, with the defaults of documents.md applied as the loader
// would apply them. Images and VMs refer to no manifest or scan report (as in
// Write's output), so VG105 and VG203 find nothing in it. Invalid options are
// clamped: a negative count is taken as 0 (see Validate).
func Estate(opts Options) (*estate.Estate, *estate.Policy) {
	w := build(opts.resolved())
	w.stripSideFiles()
	return w.e, w.p
}

// Write writes the Estate document as compact JSON to w: one element of each
// list per line, so that line numbers in findings point at one object. It
// refers to no side file, so it is a complete, valid input on its own; it
// holds no Policy, so the placement checks (VG401, VG402) find nothing in it.
func Write(w io.Writer, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	g := build(opts.resolved())
	return writeEstate(w, g, false)
}

// WriteDir writes a complete input directory to dir (created if missing):
// estate.json, policy.yaml with separate and placement rules, and the
// manifests/ and scans/ the estate refers to (paths relative to estate.json).
// `vguard check DIR` then has something to find for every estate check.
func WriteDir(dir string, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	g := build(opts.resolved())
	for _, sub := range []string{"", "manifests", "scans"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("create output directory: %w", err)
		}
	}
	if err := writeFile(filepath.Join(dir, "estate.json"), func(w io.Writer) error {
		return writeEstate(w, g, true)
	}); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "policy.yaml"), func(w io.Writer) error {
		return writePolicy(w, g)
	}); err != nil {
		return err
	}
	return g.writeSideFiles(dir)
}

// writeFile creates path and lets fill write it through a buffer.
func writeFile(path string, fill func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fill(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var errShortBudget = errors.New("gen: internal error: VM count mismatch")
