package imagefs

import (
	"errors"
	"sync"
	"testing"
)

func TestForEach(t *testing.T) {
	files := make([]*Entry, 500)
	for i := range files {
		files[i] = &Entry{Size: int64(i % 37)}
	}
	var mu sync.Mutex
	seen := map[int]int{}
	err := ForEach(files, func(w, i int) error {
		if w < 0 || w >= Workers() {
			t.Errorf("worker %d out of range", w)
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		return nil
	})
	if err != nil || len(seen) != len(files) {
		t.Fatalf("ForEach: %v, %d of %d files visited", err, len(seen), len(files))
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("file %d visited %d times", i, n)
		}
	}
	boom := errors.New("boom")
	calls := 0
	err = ForEach(files, func(_, i int) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return boom
	})
	if !errors.Is(err, boom) || calls >= len(files) {
		t.Fatalf("after an error: %v, %d calls (want the error and an early stop)", err, calls)
	}
}
