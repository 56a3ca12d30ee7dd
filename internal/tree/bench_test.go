package tree

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree writes files files of size bytes each (pseudo-random content,
// spread over 20 directories) and waits out the stat cache's racy window,
// so that a cached run can reuse them all.
func benchTree(b *testing.B, files, size int) string {
	b.Helper()
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, size)
	for i := range files {
		for j := 0; j+8 <= len(buf); j += 8 {
			v := rng.Uint64()
			buf[j], buf[j+1], buf[j+2], buf[j+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			buf[j+4], buf[j+5], buf[j+6], buf[j+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
		}
		p := filepath.Join(root, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%05d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(cacheSlack + 100*time.Millisecond)
	return root
}

// BenchmarkManifestDir: a 200 MB tree (2000 files of 100 KB), hashed in
// full, then re-manifested from the stat cache.
func BenchmarkManifestDir(b *testing.B) {
	root := benchTree(b, 2000, 100_000)
	b.Run("first", func(b *testing.B) {
		b.SetBytes(200_000_000)
		for b.Loop() {
			if _, st, err := ManifestPath(root, Options{NoCache: true}); err != nil || st.Hashed != 2000 {
				b.Fatal(err, st)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		opts := Options{CacheDir: b.TempDir()}
		if _, _, err := ManifestPath(root, opts); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(200_000_000)
		for b.Loop() {
			if _, st, err := ManifestPath(root, opts); err != nil || st.Reused != 2000 {
				b.Fatal(err, st)
			}
		}
	})
}

// BenchmarkHashLargeFiles: throughput on large files, one per core
// (4 files of 128 MiB).
func BenchmarkHashLargeFiles(b *testing.B) {
	root := benchTree(b, 4, 128<<20)
	b.SetBytes(4 * 128 << 20)
	for b.Loop() {
		if _, _, err := ManifestPath(root, Options{NoCache: true}); err != nil {
			b.Fatal(err)
		}
	}
}
