package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// maxBatch bounds how many entries one transaction carries.
const maxBatch = 1024

// Log appends entries to a chain with group commit: concurrent Appends
// that arrive while a transaction is being committed wait together and go
// into the next one, so that one fsync covers many requests. Append returns
// only once its record is durable, which is what lets a server answer a
// client after the verdict is in the trail and not before.
type Log struct {
	store Appender
	now   func() time.Time
	reqs  chan *pending
	done  chan struct{}
	stop  context.CancelFunc
}

type pending struct {
	entry Entry
	rec   Record
	err   error
	ready chan struct{}
}

// NewLog starts a Log over store. Close stops it.
func NewLog(store Appender) *Log {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Log{store: store, now: time.Now, reqs: make(chan *pending, 4*maxBatch), done: make(chan struct{}), stop: cancel}
	go l.run(ctx)
	return l
}

// ErrClosed is returned by Append on a closed Log.
var ErrClosed = errors.New("audit: log closed")

// Append adds e to the chain and returns its record once it is committed.
func (l *Log) Append(ctx context.Context, e Entry) (Record, error) {
	p := &pending{entry: e, ready: make(chan struct{})}
	select {
	case <-l.done:
		return Record{}, ErrClosed
	default:
	}
	select {
	case l.reqs <- p:
	case <-l.done:
		return Record{}, ErrClosed
	case <-ctx.Done():
		return Record{}, ctx.Err()
	}
	// Once queued the entry will be committed or fail; the caller waits
	// for that outcome even if its context ends, so that "returned" and
	// "recorded" never disagree. The one exception is a Log that stopped
	// after the entry went into the queue's buffer (a send on a buffered
	// channel succeeds even then): nothing will commit it, and run closes
	// done only after it has closed the ready channel of every entry it
	// committed, so ready is looked at once more before saying so.
	select {
	case <-p.ready:
	case <-l.done:
		select {
		case <-p.ready:
		default:
			return Record{}, ErrClosed
		}
	}
	return p.rec, p.err
}

// Close stops the Log after the queued entries are written.
func (l *Log) Close() {
	l.stop()
	<-l.done
}

func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case p := <-l.reqs:
			batch = append(batch[:0], p)
		case <-ctx.Done():
			// Drain what was queued before Close.
			for {
				select {
				case p := <-l.reqs:
					l.commit([]*pending{p})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-l.reqs:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		l.commit(batch)
	}
}

func (l *Log) commit(batch []*pending) {
	now := l.now()
	recs := make([]Record, 0, len(batch))
	var live []*pending
	for _, p := range batch {
		r, err := NewRecord(p.entry, now)
		if err != nil {
			p.err = err
			close(p.ready)
			continue
		}
		recs = append(recs, r)
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	err := l.store.AppendAudit(context.Background(), func(head Head) ([]Record, error) {
		out := make([]Record, len(recs))
		copy(out, recs)
		for i := range out {
			var err error
			if head, err = Seal(&out[i], head); err != nil {
				return nil, err
			}
		}
		recs = out
		return out, nil
	})
	for i, p := range live {
		if err != nil {
			p.err = fmt.Errorf("audit: committing: %w", err)
		} else {
			p.rec = recs[i]
		}
		close(p.ready)
	}
}

func canonical(data []byte) bool {
	c, err := CanonicalJSON(data)
	return err == nil && bytes.Equal(c, data)
}

// Problem describes where a chain breaks.
type Problem struct {
	Seq    int64  // the first broken record
	Reason string // what is wrong with it
}

func (p *Problem) Error() string { return fmt.Sprintf("audit record %d: %s", p.Seq, p.Reason) }

// Verify recomputes the chain read from r. It returns the number of records
// checked and, when the chain is broken, a *Problem naming the first broken
// record; other errors are read errors.
func Verify(ctx context.Context, r Reader) (int64, error) {
	head := Head{Hash: Genesis}
	var n int64
	for {
		recs, err := r.AuditRecords(ctx, head.Seq, 1000)
		if err != nil {
			return n, err
		}
		if len(recs) == 0 {
			return n, nil
		}
		for i := range recs {
			rec := &recs[i]
			switch {
			case rec.Seq != head.Seq+1:
				return n, &Problem{Seq: head.Seq + 1, Reason: fmt.Sprintf("missing: the chain goes from record %d to record %d", head.Seq, rec.Seq)}
			case rec.Prev != head.Hash:
				return n, &Problem{Seq: rec.Seq, Reason: "its prev does not match the hash of the record before it (a record was removed, reordered or rewritten)"}
			case rec.ComputeHash() != rec.Hash:
				return n, &Problem{Seq: rec.Seq, Reason: "its contents do not match its hash (the record was edited)"}
			case !canonical(rec.Data):
				// Seal writes canonical data only, and the documented
				// check outside vguard hashes the canonical form.
				return n, &Problem{Seq: rec.Seq, Reason: "its data is not canonical JSON (the record was not written by vguard)"}
			}
			head = Head{Seq: rec.Seq, Hash: rec.Hash}
			n++
		}
	}
}
