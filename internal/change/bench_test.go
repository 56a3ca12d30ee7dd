package change

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
)

// BenchmarkJudge100k judges random single-operation changes against the
// 100k-VM estate of `vguard gen --vms 100000 --hypervisors 2000 --seed 1`
// (loading, the first full evaluation and the first build of each lookup
// excluded) and reports the 50th and 99th percentile and the maximum
// latency, for all operations mixed and for each kind of operation. The
// issue's budget is 5 ms at the 99th percentile. op=add-image-largest is
// the worst single operation there is on this estate: a new version of the
// master with the most VMs (40,047), which puts every one of them behind.
//
// The collector runs as cmd/vguard sets it (GOGC=200): a judgement of that
// worst case allocates its 40k findings, and how often the collector then
// marks the 200 MB estate decides the tail.
func BenchmarkJudge100k(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	e, p := gen.Estate(gen.Options{VMs: 100_000, Hypervisors: 2000, Seed: 1})
	x := estate.NewIndex(e)
	j, err := NewJudge(x, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	x.Warm()
	r := rand.New(rand.NewPCG(1, 2))
	byOp := map[Op][]*Change{}
	var all []*Change
	for i := 0; len(all) < 3000; i++ {
		c := randomChange(b, r, e, i)
		c.Operations = c.Operations[:1]
		byOp[c.Operations[0].Op] = append(byOp[c.Operations[0].Op], c)
		all = append(all, c)
	}
	// Warm up: the lookups over every VM are built on first use.
	for _, c := range all[:50] {
		if _, err := j.Judge(c); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, changes []*Change) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			c := changes[i%len(changes)]
			i++
			t0 := time.Now()
			v, err := j.Judge(c)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
			// As a server does once it has written the verdict out.
			j.Release(v)
		}
		slices.Sort(lat)
		q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	}
	b.Run("op=mixed", func(b *testing.B) { run(b, all) })
	largest, most := "", 0
	for _, im := range e.Images {
		n := 0
		x.ImageMembers(im.Name, func(estate.ImageMember) { n++ })
		if im.Master && n > most {
			largest, most = im.Name, n
		}
	}
	var worst []*Change
	for i := range 50 {
		c, err := Parse("bench.yaml", []byte(fmt.Sprintf(
			"apiVersion: vguard.dev/v1\nkind: Change\noperations: [{op: add-image, spec: {name: %s, version: %d, master: true}}]\n",
			largest, 5000+i)))
		if err != nil {
			b.Fatal(err)
		}
		worst = append(worst, c)
	}
	b.Run("op=add-image-largest", func(b *testing.B) { run(b, worst) })
	ops := make([]Op, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		b.Run("op="+string(op), func(b *testing.B) { run(b, byOp[op]) })
	}
}
