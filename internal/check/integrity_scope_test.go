package check_test

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/load"
)

// sideFileChecks are the checks of secrets.go and integrity.go.
var sideFileChecks = []string{"VG105", "VG201", "VG202", "VG203", "VG204"}

// TestIncrementalSideFiles is TestIncrementalMatchesFull for VG105 and
// VG201–VG204 with the side files that estate leaves out: generated estates
// written to disk with their manifests and scan reports and loaded back, so
// that VG105's secrets and VG203's drift are judged too.
func TestIncrementalSideFiles(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	fired := map[string]bool{}
	for seed := int64(1); seed <= 3; seed++ {
		dir := filepath.Join(t.TempDir(), "estate")
		if err := gen.WriteDir(dir, gen.Options{VMs: 200 + int(seed)*150, Hypervisors: 8 + int(seed)*2, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		res, err := load.Paths([]string{dir}, load.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, p := res.Estate, res.Policy
		files := check.NewDiskFiles()
		opts := check.Options{Only: sideFileChecks, Files: files}
		eval := func(x *estate.Index, s *check.Scope) map[string]string {
			o := opts
			o.Scope = s
			res := check.Evaluate(x, p, o)
			if len(res.Errors) > 0 {
				t.Fatal(res.Errors[0])
			}
			return keyed(res.Findings)
		}
		x := estate.NewIndex(e)
		before := eval(x, nil)
		for k := range before {
			fired[k[:strings.IndexByte(k, '|')]] = true
		}
		x.EnableUpdates()
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		for round := 0; round < rounds; round++ {
			m := randomMutation(r, x, round)
			want := eval(estate.NewIndex(m.afterEstate(e)), nil)
			wantIntro, wantGone := diff(want, before), diff(before, want)

			s := m.scope(x)
			scopedBefore := eval(x, s)
			m.apply(x)
			scopedAfter := eval(x, s)
			m.undo(x)
			gotIntro, gotGone := diff(scopedAfter, scopedBefore), diff(scopedBefore, scopedAfter)
			if !slices.Equal(gotIntro, wantIntro) || !slices.Equal(gotGone, wantGone) {
				t.Fatalf("seed %d round %d: %s\nintroduced: got\n  %s\nwant\n  %s\nresolved: got\n  %s\nwant\n  %s",
					seed, round, strings.Join(m.desc, "; "),
					strings.Join(gotIntro, "\n  "), strings.Join(wantIntro, "\n  "),
					strings.Join(gotGone, "\n  "), strings.Join(wantGone, "\n  "))
			}
		}
	}
	for _, id := range sideFileChecks {
		if !fired[id] {
			t.Errorf("%s fires on none of the generated estates: the test proves nothing for it", id)
		}
	}
}
