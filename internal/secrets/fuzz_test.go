package secrets

import (
	"bytes"
	"errors"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

var (
	fuzzOnce    sync.Once
	fuzzScanner *Scanner
	fuzzIDs     []string // rules with a planter, sorted
)

func builtinScanner(tb testing.TB) *Scanner {
	fuzzOnce.Do(func() {
		s, err := NewScanner(Builtin())
		if err != nil {
			panic(err)
		}
		fuzzScanner = s
		for id := range planters {
			fuzzIDs = append(fuzzIDs, id)
		}
		sort.Strings(fuzzIDs)
	})
	return fuzzScanner
}

// FuzzScan: any bytes, under any path, scan without panic, and every
// finding's span lies in the input.
func FuzzScan(f *testing.F) {
	for _, r := range Builtin() {
		for _, m := range r.MustMatch {
			f.Add(r.TestPath, []byte(m))
		}
	}
	f.Add("/etc/shadow", []byte("root:$6$x$y:1::::::\n\x00"))
	f.Add("/x", bytes.Repeat([]byte("password=aaaa\n"), 100))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		s := builtinScanner(t)
		var spans [][2]int64
		defer func() {
			sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
			for i := 1; i < len(spans); i++ {
				if spans[i][0] < spans[i-1][1] {
					t.Fatalf("findings overlap: %v and %v", spans[i-1], spans[i])
				}
			}
		}()
		err := s.Scan(path, bytes.NewReader(data), func(fd Finding) {
			if fd.RuleID != "kerberos-keytab" { // a whole-file secret covers the rest
				spans = append(spans, [2]int64{fd.Offset, fd.Offset + fd.Length})
			}
			if fd.Offset < 0 || fd.Length <= 0 || fd.Offset+fd.Length > int64(len(data)) {
				t.Fatalf("finding %v: span %d+%d outside %d bytes", fd, fd.Offset, fd.Length, len(data))
			}
			if fd.Line < 1 || fd.Line > bytes.Count(data, []byte{'\n'})+1 {
				t.Fatalf("finding %v: line out of range", fd)
			}
			if want := 1 + bytes.Count(data[:fd.Offset], []byte{'\n'}); fd.RuleID != "kerberos-keytab" && fd.Line != want {
				t.Fatalf("finding %v: line %d, want %d", fd, fd.Line, want)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// plantAt builds a text file of about size bytes of filler with one
// secret of rule id starting at a line start near pos, and returns the
// file and the plant.
func plantAt(id string, seed int64, size, pos int, longLines bool) ([]byte, plant) {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	path, before, value, after := planters[id](r, 0)
	lines := fillerLines
	if path != "" {
		lines = commentLines // files of a strict format: comments only
	} else {
		path = "/srv/app/big.env"
	}
	line := func() {
		if longLines && r.Intn(4) == 0 {
			b.WriteString(strings.Repeat("x", 1000+r.Intn(12000)))
			b.WriteByte('\n')
			return
		}
		b.WriteString(lines[r.Intn(len(lines))])
		b.WriteByte('\n')
	}
	for b.Len()+len(before) < pos {
		// Pad with a line that ends exactly at pos when close to it.
		if need := pos - b.Len() - len(before); need < 100 {
			if need > 1 {
				b.WriteString(strings.Repeat("#", need-1))
				b.WriteByte('\n')
			} else {
				b.WriteByte('\n')
			}
			break
		}
		line()
	}
	b.WriteString(before)
	p := plant{rule: id, path: path, off: b.Len(), value: value, line: bytes.Count(b.Bytes(), []byte{'\n'}) + 1}
	b.WriteString(value)
	b.WriteString(after)
	for b.Len() < size {
		line()
	}
	return b.Bytes(), p
}

// checkOnce scans data and checks that the plant is found exactly once,
// at its span, and that nothing else is.
func checkOnce(t *testing.T, s *Scanner, data []byte, p plant, oneByte bool) {
	t.Helper()
	var r = bytes.NewReader(data)
	n := 0
	var rd = iotestReader(r, oneByte)
	err := s.Scan(p.path, rd, func(fd Finding) {
		if fd.Offset != int64(p.off) {
			t.Errorf("unexpected finding %v at %d (plant %s at %d)", fd, fd.Offset, p.rule, p.off)
			return
		}
		n++
		if fd.RuleID != p.rule || fd.Length != int64(len(p.value)) || fd.Line != p.line {
			t.Errorf("plant %s at %d line %d: got %v length %d", p.rule, p.off, p.line, fd, fd.Length)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("plant %s (%d bytes) at offset %d: found %d times", p.rule, len(p.value), p.off, n)
	}
}

func iotestReader(r *bytes.Reader, oneByte bool) interface{ Read([]byte) (int, error) } {
	if oneByte {
		return iotest.OneByteReader(r)
	}
	return iotest.HalfReader(r)
}

// TestChunkBoundary plants secrets of every rule at every few bytes
// around the first chunk boundary, with short and very long lines: each
// is found exactly once.
func TestChunkBoundary(t *testing.T) {
	s := builtinScanner(t)
	first := bufSize - lookahead
	step := 331
	if testing.Short() {
		step = 499
	}
	for i, id := range fuzzIDs {
		for d := -3000; d <= 3000; d += step {
			data, p := plantAt(id, int64(i*7919+d), first+lookahead+20000, first+d, d%2 == 0)
			checkOnce(t, s, data, p, false)
		}
	}
	// A reader that hands out one byte at a time changes nothing.
	data, p := plantAt("private-key", 5, 2*chunkSize, chunkSize, false)
	checkOnce(t, s, data, p, true)
}

func ruleByID(id string) *Rule {
	for _, r := range Builtin() {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// FuzzChunkBoundary: a secret of any rule at any position of a file
// spanning several chunks is found exactly once.
func FuzzChunkBoundary(f *testing.F) {
	f.Add(uint8(0), uint32(bufSize-lookahead), int64(1), false)
	f.Add(uint8(5), uint32(2*chunkSize+lookahead), int64(2), true)
	f.Add(uint8(9), uint32(chunkSize-7), int64(3), false)
	f.Fuzz(func(t *testing.T, which uint8, pos uint32, seed int64, long bool) {
		s := builtinScanner(t)
		id := fuzzIDs[int(which)%len(fuzzIDs)]
		const size = 3 * chunkSize
		data, p := plantAt(id, seed, size, int(pos%size), long)
		checkOnce(t, s, data, p, false)
	})
}

type errAfter struct {
	r   *bytes.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		return n, e.err
	}
	return n, nil
}

// TestReadError: a reader's error comes back from Scan, wrapped with the path.
func TestReadError(t *testing.T) {
	s := builtinScanner(t)
	boom := errors.New("boom")
	data := bytes.Repeat([]byte("log line\n"), 100000)
	err := s.Scan("/var/log/x", &errAfter{bytes.NewReader(data), boom}, func(Finding) {})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "/var/log/x") {
		t.Fatalf("got %v", err)
	}
}

// TestBinarySkipped: a binary file is not read past its first block when
// no rule reads binary files there, and binary rules still run on it.
func TestBinarySkipped(t *testing.T) {
	s := builtinScanner(t)
	data := append([]byte("\x7fELF\x00\x00"), bytes.Repeat([]byte("DB_PASSWORD=z2oCtIsjhvNK4p\n"), 50000)...)
	r := bytes.NewReader(data)
	var got []Finding
	if err := s.Scan("/usr/bin/x", r, func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("text rules ran on a binary file: %v", got)
	}
	// Binary rules (private-key) still read it to the end.
	key := "-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----\n"
	data = append(data, key...)
	got = nil
	if err := s.Scan("/usr/bin/x", bytes.NewReader(data), func(f Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RuleID != "private-key" {
		t.Errorf("private key in a binary file: got %v", got)
	}
	// With only text rules, the file is not read past the first block.
	only, err := NewScanner([]*Rule{ruleByID("password-assignment")})
	if err != nil {
		t.Fatal(err)
	}
	r = bytes.NewReader(data)
	if err := only.Scan("/usr/bin/x", r, func(Finding) {}); err != nil {
		t.Fatal(err)
	}
	if read := len(data) - r.Len(); read > bufSize {
		t.Errorf("read %d bytes of a binary file no rule reads", read)
	}
}

// TestConcurrentScan: one Scanner, several goroutines, same results.
func TestConcurrentScan(t *testing.T) {
	files, plants, _ := genCorpus(3, 1)
	s := builtinScanner(t)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for g := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range files {
				s.Scan(f.path, bytes.NewReader(f.data), func(Finding) { counts[g]++ })
			}
		}()
	}
	wg.Wait()
	for g, n := range counts {
		if n != len(plants) {
			t.Errorf("goroutine %d: %d findings, want %d", g, n, len(plants))
		}
	}
}
