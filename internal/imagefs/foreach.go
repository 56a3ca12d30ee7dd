package imagefs

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
)

// Workers is how many goroutines ForEach runs: one per core Go may use.
func Workers() int { return runtime.GOMAXPROCS(0) }

// ForEach calls fn(w, i) once for each files[i], on Workers() goroutines,
// largest files first so that one big file does not start last and run
// alone. w numbers the goroutine (0 ≤ w < Workers()), for state a caller
// keeps per goroutine (a read buffer). After the first error no new file
// is started, and that error is returned. The files must come from an
// image that allows it (Image.RandomAccess), and fn must be safe to run
// concurrently.
func ForEach(files []*Entry, fn func(w, i int) error) error {
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(files[b].Size, files[a].Size) })
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for w := range Workers() {
		wg.Go(func() {
			for i := range work {
				if err := fn(w, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, i := range order {
		if failed() {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return firstErr
}
