// Package progress draws a one-line progress bar on a terminal (stderr)
// for long reads of images: bytes and files done, of the total when known,
// and the rate. It draws at most ten times a second, clears its line when
// done, and draws nothing at all when disabled, so commands create one
// unconditionally and let Enabled decide (a terminal, and no --quiet).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Enabled reports whether a bar should be drawn on w: w is a terminal
// (a character device) and the user did not ask for quiet.
func Enabled(w io.Writer, quiet bool) bool {
	if quiet {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Bar is a progress bar. Its methods are safe for concurrent use and do
// nothing on a nil or disabled Bar.
type Bar struct {
	w       io.Writer
	enabled bool
	label   string
	start   time.Time
	every   time.Duration

	bytes, files           atomic.Int64
	totalBytes, totalFiles atomic.Int64 // -1 while unknown

	mu    sync.Mutex
	last  time.Time
	width int // of the line drawn last, to clear it
	done  bool
}

// New returns a bar labelled label (e.g. "manifest disk.qcow2") that draws
// on w when enabled.
func New(w io.Writer, enabled bool, label string) *Bar {
	b := &Bar{w: w, enabled: enabled, label: label, start: time.Now(), every: 100 * time.Millisecond}
	b.totalBytes.Store(-1)
	b.totalFiles.Store(-1)
	return b
}

// SetTotal sets what 100% is; a negative value leaves that total unknown.
func (b *Bar) SetTotal(bytes, files int64) {
	if b == nil {
		return
	}
	b.totalBytes.Store(bytes)
	b.totalFiles.Store(files)
	b.draw(false)
}

// Add counts bytes and files done and redraws if the last draw is more
// than a tenth of a second old.
func (b *Bar) Add(bytes, files int64) {
	if b == nil {
		return
	}
	b.bytes.Add(bytes)
	b.files.Add(files)
	b.draw(false)
}

// Done clears the bar's line. Later calls draw nothing.
func (b *Bar) Done() {
	if b == nil || !b.enabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.width > 0 {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.width))
	}
}

func (b *Bar) draw(force bool) {
	if !b.enabled {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || !force && now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	line := b.line(now)
	pad := ""
	if n := b.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(b.w, "\r%s%s", line, pad)
	b.width = len(line)
}

// line renders the bar's text, e.g.
// "manifest disk.qcow2  412 MB / 1.2 GB  3120 / 9800 files  210 MB/s".
func (b *Bar) line(now time.Time) string {
	done, files := b.bytes.Load(), b.files.Load()
	tb, tf := b.totalBytes.Load(), b.totalFiles.Load()
	var sb strings.Builder
	sb.WriteString(b.label)
	sb.WriteString("  ")
	if tb > 0 {
		fmt.Fprintf(&sb, "%3d%%  ", min(100, done*100/tb))
	}
	sb.WriteString(Bytes(done))
	if tb >= 0 {
		sb.WriteString(" / " + Bytes(tb))
	}
	fmt.Fprintf(&sb, "  %d", files)
	if tf >= 0 {
		fmt.Fprintf(&sb, " / %d", tf)
	}
	sb.WriteString(" files")
	if secs := now.Sub(b.start).Seconds(); secs > 0.2 {
		fmt.Fprintf(&sb, "  %s/s", Bytes(int64(float64(done)/secs)))
	}
	return sb.String()
}

// Bytes formats a byte count in decimal units: "950 B", "12.3 MB".
func Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, " kMGTP"[i])
}
