package load_test

import (
	"bytes"
	"testing"

	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/load"
)

// BenchmarkLoad100k measures loading the JSON estate that `vguard gen --vms
// 100000 --hypervisors 2000` writes: parse, decode, merge, validate.
func BenchmarkLoad100k(b *testing.B) {
	var buf bytes.Buffer
	if err := gen.Write(&buf, gen.Options{VMs: 100_000, Hypervisors: 2000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := load.Bytes("estate.json", data, load.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
