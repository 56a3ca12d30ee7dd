package check

import "sync"

// Buffers recycles the arrays that evaluations emit findings into. A
// judgement that puts a master's tens of thousands of VMs behind emits that
// many findings, several megabytes, and a service judging changes all day
// would otherwise hand each array to the collector, which then marks the
// whole estate again and again. Whoever is done with a result gives its
// findings back (Put); the next evaluation with the same Buffers reuses
// them. The zero Buffers is ready; a nil *Buffers allocates as usual. Safe
// for concurrent use.
type Buffers struct {
	mu   sync.Mutex
	free [][]Finding
}

// maxFree bounds what Buffers keeps: enough for the before and after
// evaluations of one judgement and a verdict in flight.
const maxFree = 4

// get returns an empty slice with room for at least n findings, reusing a
// returned array when one is large enough.
func (b *Buffers) get(n int) []Finding {
	if b == nil {
		if n == 0 {
			return nil
		}
		return make([]Finding, 0, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// An array far larger than n is not handed out: its whole capacity is
	// cleared when it comes back, which would cost a small evaluation
	// what the large one saved.
	best := -1
	for i, f := range b.free {
		if cap(f) >= n && cap(f) <= 2*n+4096 && (best < 0 || cap(f) < cap(b.free[best])) {
			best = i
		}
	}
	if best < 0 {
		if n == 0 {
			return nil
		}
		return make([]Finding, 0, n)
	}
	f := b.free[best]
	b.free = append(b.free[:best], b.free[best+1:]...)
	return f[:0]
}

// Put gives back the array of fs, which the caller must not use again.
// Small arrays are not kept: they cost the collector little.
func (b *Buffers) Put(fs []Finding) {
	if b == nil || cap(fs) < 1024 {
		return
	}
	// Cleared, so that the array keeps no strings or maps of findings that
	// are gone alive until it is filled again.
	clear(fs[:cap(fs)])
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.free) < maxFree {
		b.free = append(b.free, fs[:0])
		return
	}
	// Keep the largest arrays: they are the ones worth keeping.
	small := 0
	for i := range b.free {
		if cap(b.free[i]) < cap(b.free[small]) {
			small = i
		}
	}
	if cap(b.free[small]) < cap(fs) {
		b.free[small] = fs[:0]
	}
}
