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
// client after the verdict is in the trail and not before. A batch the
// store refuses is committed again record by record, so that a record the
// database cannot take fails only its own Append.
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

// commit appends the records of batch in one transaction, or one by one
// if that fails, and tells each waiting Append how its record went.
func (l *Log) commit(batch []*pending) {
	now := l.now()
	var live []*pending
	for _, p := range batch {
		r, err := NewRecord(p.entry, now)
		if err != nil {
			p.err = err
			close(p.ready)
			continue
		}
		p.rec = r
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	sealed, err := l.append(live)
	if err != nil && len(live) > 1 {
		err = l.isolate(live, sealed, err)
	}
	for _, p := range live {
		if p.err == nil && err != nil {
			p.err = fmt.Errorf("audit: committing: %w", err)
		}
		close(p.ready)
	}
}

// append stores the records of ps in one transaction; on success each
// p.rec is its sealed record. It returns the records as sealed, also when
// the commit then failed (nil if it failed before sealing).
func (l *Log) append(ps []*pending) ([]Record, error) {
	var sealed []Record
	err := l.store.AppendAudit(context.Background(), func(head Head) ([]Record, error) {
		sealed = make([]Record, len(ps))
		for i, p := range ps {
			sealed[i] = p.rec
			var err error
			if head, err = Seal(&sealed[i], head); err != nil {
				return nil, err
			}
		}
		return sealed, nil
	})
	if err == nil {
		for i, p := range ps {
			p.rec = sealed[i]
		}
	}
	return sealed, err
}

// isolate follows a batch that failed to commit. One bad record (one the
// database refuses) must fail only its own request, not every request that
// happened to share its transaction, so the records are committed again
// one by one and each p.err says how its own went. It returns batchErr, for
// all of them, only when the store cannot be reached at all.
func (l *Log) isolate(ps []*pending, sealed []Record, batchErr error) error {
	// First read the chain's head: a store that cannot even do that is
	// down, and trying each record would only wait for it len(ps) times.
	var head Head
	err := l.store.AppendAudit(context.Background(), func(h Head) ([]Record, error) {
		head = h
		return nil, nil
	})
	if err != nil {
		return batchErr
	}
	// A commit whose answer was lost: the head is the batch's last
	// record, and committing the records again would record them twice.
	// (Had another writer appended since, that goes unseen, and the
	// records are committed again: the lesser evil against refusing
	// every request.)
	if n := len(sealed); n == len(ps) && head == (Head{Seq: sealed[n-1].Seq, Hash: sealed[n-1].Hash}) {
		for i, p := range ps {
			p.rec = sealed[i]
		}
		return nil
	}
	for _, p := range ps {
		if _, err := l.append([]*pending{p}); err != nil {
			p.err = fmt.Errorf("audit: committing: %w", err)
		}
	}
	return nil
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
