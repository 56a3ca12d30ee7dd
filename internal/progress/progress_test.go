package progress

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, true, "manifest disk.img")
	b.every = 0 // draw on every call, to see each state
	b.SetTotal(2_000_000, 4)
	b.Add(1_000_000, 2)
	out := buf.String()
	if !strings.Contains(out, "manifest disk.img   50%  1.0 MB / 2.0 MB  2 / 4 files") {
		t.Errorf("bar = %q", out)
	}
	b.Done()
	b.Add(1, 1)
	if !strings.HasSuffix(buf.String(), "\r") {
		t.Errorf("Done did not end by returning to the line's start: %q", buf.String())
	}
	last := buf.String()[strings.LastIndex(strings.TrimSuffix(buf.String(), "\r"), "\r"):]
	if strings.TrimSpace(last) != "" {
		t.Errorf("Done left text on the line: %q", last)
	}
}

func TestBarUnknownTotals(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, true, "scan a.tar.gz")
	b.every = 0
	b.Add(1500, 1)
	if got := buf.String(); !strings.Contains(got, "1.5 kB  1 files") || strings.Contains(got, "/") {
		t.Errorf("bar = %q", got)
	}
}

// TestRateLimit: many concurrent Adds draw at most about ten times a
// second, and every Add is counted.
func TestRateLimit(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, true, "x")
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for range 10000 {
				b.Add(1, 0)
			}
		})
	}
	wg.Wait()
	draws := strings.Count(buf.String(), "\r")
	limit := int(time.Since(start)/(100*time.Millisecond)) + 2
	if draws > limit {
		t.Errorf("%d draws in %v", draws, time.Since(start))
	}
	if b.bytes.Load() != 80000 {
		t.Errorf("counted %d bytes, want 80000", b.bytes.Load())
	}
}

func TestDisabled(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, false, "x")
	b.SetTotal(10, 1)
	b.Add(5, 1)
	b.Done()
	var nilBar *Bar
	nilBar.Add(1, 1)
	nilBar.Done()
	if buf.Len() != 0 {
		t.Errorf("a disabled bar wrote %q", buf.String())
	}
	if Enabled(&buf, false) {
		t.Error("a buffer is taken for a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Enabled(f, false) {
		t.Error("a regular file is taken for a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !Enabled(tty, false) || Enabled(tty, true) {
			t.Error("a terminal: Enabled should be true, and false with quiet")
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1_234_567: "1.2 MB", 5_000_000_000: "5.0 GB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
