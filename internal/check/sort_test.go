package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
)

// TestSortFindingsMatchesSort holds the run-merging sort to a plain
// comparison sort, on inputs made of a few sorted runs (what checks emit),
// of many (the fallback) and of random order.
func TestSortFindingsMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	random := func(n int) []Finding {
		fs := make([]Finding, n)
		for i := range fs {
			fs[i] = Finding{
				Severity: estate.Severity(1 + r.IntN(5)),
				Check:    fmt.Sprintf("VG%d", 101+r.IntN(4)),
				Subject:  fmt.Sprintf("vm/v%03d", r.IntN(50)),
				Related:  []string{fmt.Sprintf("zone/z%d", r.IntN(3))},
				Message:  fmt.Sprint(i),
			}
		}
		return fs
	}
	plain := func(fs []Finding) []Finding {
		out := slices.Clone(fs)
		slices.SortStableFunc(out, func(a, b Finding) int { return compareFindings(&a, &b) })
		return out
	}
	for trial := range 300 {
		n := r.IntN(400)
		fs := random(n)
		switch runs := 1 + r.IntN(100); {
		case trial%3 == 0: // random order
		default: // `runs` sorted runs, concatenated
			for lo := 0; lo < n; {
				hi := min(n, lo+1+r.IntN(max(1, 2*n/runs)))
				slices.SortStableFunc(fs[lo:hi], func(a, b Finding) int { return compareFindings(&a, &b) })
				lo = hi
			}
		}
		want := plain(fs)
		got := slices.Clone(fs)
		SortFindings(got)
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d findings in, %d out", trial, len(want), len(got))
		}
		for i := range got {
			if compareFindings(&got[i], &want[i]) != 0 {
				t.Fatalf("trial %d, n=%d: position %d is %s %s %s, want %s %s %s", trial, n, i,
					got[i].Check, got[i].Subject, got[i].Related, want[i].Check, want[i].Subject, want[i].Related)
			}
		}
		// Every finding is still there exactly once (messages are unique).
		seen := map[string]bool{}
		for _, f := range got {
			if seen[f.Message] {
				t.Fatalf("trial %d: finding %s twice", trial, f.Message)
			}
			seen[f.Message] = true
		}
	}
}
