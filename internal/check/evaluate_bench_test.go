package check_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/load"
)

// BenchmarkEvaluate measures a whole evaluation (index, every check, side
// files read through a fresh cache, findings sorted) on generated estates of
// 1k, 10k and 100k VMs; loading is excluded. docs/performance.md quotes it.
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("vms=%d", n), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "estate")
			if err := gen.WriteDir(dir, gen.Options{VMs: n, Hypervisors: max(20, n/50), Seed: 1}); err != nil {
				b.Fatal(err)
			}
			res, err := load.Paths([]string{dir}, load.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var findings int
			for b.Loop() {
				out := check.Evaluate(estate.NewIndex(res.Estate), res.Policy, check.Options{Files: check.NewDiskFiles()})
				if len(out.Errors) > 0 {
					b.Fatal(out.Errors[0])
				}
				findings = len(out.Findings)
			}
			b.ReportMetric(float64(findings), "findings")
		})
	}
}

// benchSizes are the estate sizes of BenchmarkEvaluate; VGUARD_BENCH_BIG=1
// adds 200k VMs to see how the cost grows past the 100k.
func benchSizes() []int {
	if os.Getenv("VGUARD_BENCH_BIG") != "" {
		return []int{1_000, 10_000, 100_000, 200_000}
	}
	return []int{1_000, 10_000, 100_000}
}
