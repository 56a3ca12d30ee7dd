package change

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
)

// BenchmarkJudge100k judges random single-operation changes against the
// 100k-VM estate of `vguard gen --vms 100000 --hypervisors 2000 --seed 1`,
// loading and the first full evaluation excluded, and reports the 50th,
// 99th and maximum latency over the changes it judged. The budget
// is 5 ms at the 99th percentile.
func BenchmarkJudge100k(b *testing.B) {
	e, p := gen.Estate(gen.Options{VMs: 100_000, Hypervisors: 2000, Seed: 1})
	j, err := NewJudge(estate.NewIndex(e), p, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	changes := make([]*Change, 2000)
	for i := range changes {
		c := randomChange(b, r, e, i)
		c.Operations = c.Operations[:1]
		changes[i] = c
	}
	var lat []time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c := changes[i%len(changes)]
		i++
		t0 := time.Now()
		if _, err := j.Judge(c); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
