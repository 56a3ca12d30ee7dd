package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The canonical encoding is reproducible outside Go: this hash was computed
// with Python's json.dumps(d, separators=(',', ':'), sort_keys=True) and
// hashlib.sha256, as docs/serve.md shows.
func TestCanonicalVector(t *testing.T) {
	r := Record{Time: "2026-11-25T10:00:00.000000000Z", Kind: KindJudge, Actor: "ci", Subject: "chg-1",
		Data: json.RawMessage(`{ "b": [1, 2.5, "x"], "a": {"z": null, "y": true} }`)}
	head, err := Seal(&r, Head{Hash: Genesis})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"time":"2026-11-25T10:00:00.000000000Z","kind":"change.judge","actor":"ci","subject":"chg-1","data":{"a":{"y":true,"z":null},"b":[1,2.5,"x"]},"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`
	if got := string(r.Canonical()); got != want {
		t.Fatalf("canonical:\n%s\nwant\n%s", got, want)
	}
	if r.Hash != "5f640c3e020634b7a78470c252ec8fd16797d2b586c86e0d9a64ae114ed458e6" || head.Hash != r.Hash || head.Seq != 1 {
		t.Fatalf("hash %s, head %+v", r.Hash, head)
	}
}

func TestCanonicalJSONRefuses(t *testing.T) {
	for _, in := range []string{``, `[1]`, `"x"`, `{"a":1} {}`, `{"a":`} {
		if _, err := CanonicalJSON([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// memChain is an in-memory Appender and Reader, for the Log's own tests;
// the stores run the same checks against real databases.
type memChain struct{ recs []Record }

func (m *memChain) AppendAudit(_ context.Context, build func(Head) ([]Record, error)) error {
	h := Head{Hash: Genesis}
	if n := len(m.recs); n > 0 {
		h = Head{Seq: m.recs[n-1].Seq, Hash: m.recs[n-1].Hash}
	}
	recs, err := build(h)
	if err != nil {
		return err
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memChain) AuditRecords(_ context.Context, after int64, limit int) ([]Record, error) {
	var out []Record
	for _, r := range m.recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func TestLogAndVerify(t *testing.T) {
	ctx := context.Background()
	m := &memChain{}
	l := NewLog(m)
	for i := range 2500 { // more than one page of Verify
		if _, err := l.Append(ctx, Entry{Kind: KindSync, Actor: "x", Data: map[string]int{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(ctx, Entry{Kind: KindSync, Data: func() {}}); err == nil {
		t.Error("unencodable data accepted")
	}
	l.Close()
	if _, err := l.Append(ctx, Entry{Kind: KindSync}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if n, err := Verify(ctx, m); err != nil || n != 2500 {
		t.Fatalf("verify: %d, %v", n, err)
	}
	// Rewriting a record and its hash is caught at the next record.
	r := &m.recs[1700]
	r.Subject = "forged"
	r.Hash = r.ComputeHash()
	var p *Problem
	if _, err := Verify(ctx, m); !errors.As(err, &p) || p.Seq != 1702 {
		t.Fatalf("rewritten record: %v", err)
	}
	// A record whose hash matches but whose data is not canonical (not
	// written by Seal) is refused too: the documented check outside
	// vguard would fail on it.
	m.recs = m.recs[:1]
	m.recs[0].Data = []byte(`{"i": 0}`)
	m.recs[0].Hash = m.recs[0].ComputeHash()
	if _, err := Verify(ctx, m); !errors.As(err, &p) || p.Seq != 1 || !strings.Contains(p.Reason, "canonical") {
		t.Fatalf("non-canonical data: %v", err)
	}
}

// FuzzCanonicalJSON: canonical JSON is a fixed point and keeps the value.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":1,"a":[true,null,"x"]}`, `{"n":1.50e3,"s":"\u2028<>&\ud800"}`, `{"a":{"c":{},"b":[]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := CanonicalJSON([]byte(in))
		if err != nil {
			return
		}
		c2, err := CanonicalJSON(c)
		if err != nil || string(c2) != string(c) {
			t.Fatalf("not a fixed point: %s -> %s (%v)", c, c2, err)
		}
		var a, b any
		if json.Unmarshal([]byte(in), &a) != nil || json.Unmarshal(c, &b) != nil {
			t.Fatalf("canonical form of %q does not parse: %s", in, c)
		}
	})
}

// Seal stores kind, actor and subject without control characters or
// invalid UTF-8: PostgreSQL refuses a NUL in a TEXT column, and an escape
// sequence must not reach a terminal that shows the trail.
func TestSealCleansNames(t *testing.T) {
	r := Record{Time: "2026-11-25T10:00:00.000000000Z", Kind: "k\x00", Actor: "a\x1b[2Jb\x7f", Subject: "CHG\x00x\u0085ü\xff"}
	if _, err := Seal(&r, Head{Hash: Genesis}); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "k\uFFFD" || r.Actor != "a\uFFFD[2Jb\uFFFD" || r.Subject != "CHG\uFFFDx\uFFFDü\uFFFD" {
		t.Fatalf("sealed: kind %q actor %q subject %q", r.Kind, r.Actor, r.Subject)
	}
	if r.Hash != r.ComputeHash() {
		t.Fatal("the hash is not of the cleaned record")
	}
}

// faultyChain is memChain with faults injected: a transaction holding a
// record whose subject is "poison" is refused as a database would refuse
// it; the transaction numbered lose (from 1) is committed but reports an
// error (a commit whose answer was lost); down refuses everything; hold, when set, keeps
// the first transaction waiting until it is closed.
type faultyChain struct {
	memChain
	mu    sync.Mutex
	calls int
	lose  int
	down  bool
	hold  chan struct{}
}

func (f *faultyChain) AppendAudit(ctx context.Context, build func(Head) ([]Record, error)) error {
	f.mu.Lock()
	f.calls++
	call, hold := f.calls, f.hold
	f.hold = nil
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	poisoned := false
	err := f.memChain.AppendAudit(ctx, func(h Head) ([]Record, error) {
		recs, err := build(h)
		for _, r := range recs {
			poisoned = poisoned || r.Subject == "poison"
		}
		if poisoned {
			return nil, errors.New(`invalid byte sequence for encoding "UTF8"`)
		}
		return recs, err
	})
	if err == nil && call == f.lose {
		return errors.New("connection reset while committing")
	}
	return err
}

// queueBatch appends entries while the Log's first transaction is held, so
// that they all go into its next batch, and returns each one's outcome.
func queueBatch(t *testing.T, l *Log, f *faultyChain, entries []Entry) ([]Record, []error) {
	t.Helper()
	ctx := context.Background()
	hold := make(chan struct{})
	f.hold = hold
	first := make(chan error, 1)
	go func() { _, err := l.Append(ctx, Entry{Kind: KindSync, Subject: "first"}); first <- err }()
	for f.mu.Lock(); f.calls == 0; f.mu.Lock() {
		f.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	f.mu.Unlock()
	recs, errs := make([]Record, len(entries)), make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Add(1)
		go func() { defer wg.Done(); recs[i], errs[i] = l.Append(ctx, e) }()
	}
	for len(l.reqs) < len(entries) {
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if err := <-first; err != nil && !f.down {
		t.Fatalf("first append: %v", err)
	}
	return recs, errs
}

// TestLogIsolatesFaults: a record the store refuses fails only its own
// Append, not the others of its batch; a batch committed whose answer was
// lost is not committed twice; a store that is down fails every Append
// without being tried once per record.
func TestLogIsolatesFaults(t *testing.T) {
	ctx := context.Background()
	entries := func(poison int) []Entry {
		es := make([]Entry, 20)
		for i := range es {
			es[i] = Entry{Kind: KindJudge, Actor: "ci", Subject: fmt.Sprintf("chg-%d", i)}
			if i == poison {
				es[i].Subject = "poison"
			}
		}
		return es
	}

	t.Run("bad record", func(t *testing.T) {
		f := &faultyChain{}
		l := NewLog(f)
		defer l.Close()
		recs, errs := queueBatch(t, l, f, entries(7))
		for i, err := range errs {
			if (err != nil) != (i == 7) {
				t.Errorf("append %d: %v", i, err)
			}
			if err == nil && recs[i].Subject != fmt.Sprintf("chg-%d", i) {
				t.Errorf("append %d returned record %+v", i, recs[i])
			}
		}
		if n, err := Verify(ctx, &f.memChain); err != nil || n != 20 {
			t.Fatalf("verify: %d records, %v; want 20 (the first and 19 good ones)", n, err)
		}
	})

	t.Run("lost answer", func(t *testing.T) {
		f := &faultyChain{lose: 2} // the batch after the held first one
		l := NewLog(f)
		defer l.Close()
		recs, errs := queueBatch(t, l, f, entries(-1))
		for i, err := range errs {
			if err != nil || recs[i].Seq == 0 {
				t.Errorf("append %d: %+v, %v", i, recs[i], err)
			}
		}
		if n, err := Verify(ctx, &f.memChain); err != nil || n != 21 {
			t.Fatalf("verify: %d records, %v; want 21 (the first, and the batch once)", n, err)
		}
	})

	t.Run("store down", func(t *testing.T) {
		f := &faultyChain{down: true}
		l := NewLog(f)
		defer l.Close()
		_, errs := queueBatch(t, l, f, entries(-1))
		for i, err := range errs {
			if err == nil {
				t.Errorf("append %d succeeded on a store that is down", i)
			}
		}
		// The first, the batch, and one look at the head.
		if f.calls != 3 {
			t.Fatalf("%d transactions tried; want 3", f.calls)
		}
	})
}
