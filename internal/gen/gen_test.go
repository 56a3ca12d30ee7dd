package gen

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

func write(t testing.TB, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	a := write(t, Options{VMs: 2000, Seed: 7})
	b := write(t, Options{VMs: 2000, Seed: 7})
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different bytes")
	}
	if c := write(t, Options{VMs: 2000, Seed: 8}); bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same bytes")
	}
}

func TestWriteDirDeterministic(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	opts := Options{VMs: 1500, Hypervisors: 40, Seed: 3}
	for _, d := range []string{d1, d2} {
		if err := WriteDir(d, opts); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	filepath.WalkDir(d1, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(d1, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(d2, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with the same seed", rel)
		}
		n++
		return nil
	})
	if n < 10 {
		t.Errorf("only %d files written", n)
	}
}

func TestOptions(t *testing.T) {
	if err := Write(io.Discard, Options{VMs: -1}); err == nil {
		t.Error("negative VMs accepted")
	}
	if err := Write(io.Discard, Options{VMs: 10, Hypervisors: -1}); err == nil {
		t.Error("negative hypervisors accepted")
	}
	for _, o := range []Options{{VMs: 0}, {VMs: 1}, {VMs: 7, Hypervisors: 1}, {VMs: 100, Hypervisors: 2}, {VMs: 300, Hypervisors: 5}} {
		e, _ := Estate(o)
		if len(e.VMs) != o.VMs {
			t.Errorf("%+v: %d VMs", o, len(e.VMs))
		}
		if want := o.resolved().Hypervisors; len(e.Hypervisors) != want {
			t.Errorf("%+v: %d hypervisors, want %d", o, len(e.Hypervisors), want)
		}
		if _, err := load.Bytes("estate.json", write(t, o), load.Options{}); err != nil {
			t.Errorf("%+v: does not load: %v", o, err)
		}
	}
}

// TestShape checks the output format: compact JSON, one element per line,
// the field forms of documents.md.
func TestShape(t *testing.T) {
	out := write(t, Options{VMs: 3000, Seed: 1})
	if !json.Valid(out) {
		t.Fatal("not valid JSON")
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	vmLines := 0
	for _, l := range lines {
		if strings.HasPrefix(l, `{"name":`) && strings.Contains(l, `"hypervisor":`) {
			vmLines++
			var vm map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimSuffix(l, ","), "]")), &vm); err != nil {
				t.Fatalf("VM line is not one object: %v\n%s", err, l)
			}
		}
	}
	if vmLines != 3000 {
		t.Errorf("%d VM lines, want 3000 (one per VM)", vmLines)
	}
	for _, want := range []string{`"image":"web-master@4"`, `"ports":[443]`, `"vms":[`, `"selector":{"app":`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %s", want)
		}
	}
	if bytes.Contains(out, []byte(`"manifest"`)) || bytes.Contains(out, []byte(`"scan"`)) {
		t.Error("stdout estate refers to side files")
	}
}

// TestLoadsAsWritten loads the written directory with the real loader and
// compares it with the estate built in memory.
func TestLoadsAsWritten(t *testing.T) {
	dir := t.TempDir()
	opts := Options{VMs: 3000, Seed: 11}
	if err := WriteDir(dir, opts); err != nil {
		t.Fatal(err)
	}
	res, err := load.Paths([]string{dir}, load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	mem, pol := Estate(opts)
	got := res.Estate
	// The loader resolves side-file paths against the directory; Estate()
	// has none. Positions are not marshalled.
	for _, im := range got.Images {
		im.Manifest, im.Scan = "", ""
	}
	for _, vm := range got.VMs {
		vm.Manifest, vm.Scan = "", ""
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(mem)
	if !bytes.Equal(a, b) {
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				lo := max(0, i-300)
				t.Fatalf("loaded estate differs from Estate() at byte %d:\nloaded %s\nmemory %s", i, a[lo:min(len(a), i+200)], b[lo:min(len(b), i+200)])
			}
		}
		t.Fatalf("loaded estate differs from Estate() in length: %d vs %d", len(a), len(b))
	}
	pa, _ := json.Marshal([]any{res.Policy.Separate, res.Policy.Placement, res.Policy.ZoneHardening, res.Policy.MasterLag})
	pb, _ := json.Marshal([]any{pol.Separate, pol.Placement, pol.ZoneHardening, pol.MasterLag})
	if !bytes.Equal(pa, pb) {
		t.Errorf("loaded policy differs:\nloaded %s\nmemory %s", pa, pb)
	}
	// Every written side file is referred to, and the loaded side files
	// parse with the readers the checks use.
	res2, _ := load.Paths([]string{dir}, load.Options{})
	refs := map[string]bool{}
	for _, im := range res2.Estate.Images {
		refs[im.Manifest], refs[im.Scan] = true, true
	}
	for _, vm := range res2.Estate.VMs {
		refs[vm.Manifest], refs[vm.Scan] = true, true
	}
	for _, sub := range []string{"manifests", "scans"} {
		des, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, de := range des {
			p := filepath.Join(dir, sub, de.Name())
			if !refs[p] {
				t.Errorf("%s is written but nothing refers to it", p)
			}
			var err error
			if sub == "manifests" {
				_, err = manifest.ReadFile(p)
			} else {
				_, err = scanreport.ReadFile(p)
			}
			if err != nil {
				t.Error(err)
			}
		}
	}
}

// TestEveryCheckFires evaluates a 5k-VM directory: every estate check of
// the catalogue fires, and none fires on more than a small share of the
// objects it judges.
func TestEveryCheckFires(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDir(dir, Options{VMs: 5000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := load.Paths([]string{dir}, load.Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	x := estate.NewIndex(res.Estate)
	r := check.Evaluate(x, res.Policy, check.Options{Files: check.NewDiskFiles()})
	for _, e := range r.Errors {
		t.Errorf("evaluation error: %v", e)
	}
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Check]++
	}
	for _, c := range check.Catalogue() {
		if c.ChangeOnly {
			continue
		}
		n := counts[c.ID]
		t.Logf("%s %-32s %4d", c.ID, c.Name, n)
		if n == 0 {
			t.Errorf("%s (%s) does not fire", c.ID, c.Name)
		}
	}
	// A sprinkle: no VM check fires on more than 2.5% of the VMs.
	for id, n := range counts {
		if n > len(res.Estate.VMs)/40 {
			t.Errorf("%s fires %d times on %d VMs: more than a sprinkle", id, n, len(res.Estate.VMs))
		}
	}
}

func BenchmarkWrite100k(b *testing.B) {
	opts := Options{VMs: 100000, Hypervisors: 2000, Seed: 1}
	var n int64
	for b.Loop() {
		cw := &countWriter{}
		if err := Write(cw, opts); err != nil {
			b.Fatal(err)
		}
		n = cw.n
	}
	b.ReportMetric(float64(n)/1e6, "MB")
}

func BenchmarkEstate100k(b *testing.B) {
	opts := Options{VMs: 100000, Hypervisors: 2000, Seed: 1}
	for b.Loop() {
		Estate(opts)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
