package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Event is one line of `vguard watch`: a finding that was there when the
// watch started ("present"), appeared, or was resolved.
type Event struct {
	Time    string        `json:"time"`
	Event   string        `json:"event"` // present | appeared | resolved
	Finding check.Finding `json:"finding"`
}

// The event words.
const (
	EventPresent  = "present"
	EventAppeared = "appeared"
	EventResolved = "resolved"
)

// Watcher turns successive inventories of a platform into finding events:
// each new inventory is merged with the overlay, loaded like any estate,
// evaluated in full, and compared by finding key with the last one.
// Evaluating everything is simple and, at hundreds or thousands of VMs,
// a few milliseconds; the platform feed only says when to do it.
type Watcher struct {
	Overlays []string
	// Output, when set, is rewritten (atomically) with each new estate, so
	// that the hook and other commands read the current one.
	Output string
	// Emit receives each event, in order.
	Emit func(Event) error
	// Warn receives messages for the operator (sync warnings, once each).
	Warn func(string)
	Now  func() time.Time
	// OnInvalid, when set, receives the error of an inventory that does
	// not make a valid estate (an overlay edit gone wrong, a platform value
	// it does not take) after the first one; that inventory is skipped and
	// the last good estate and findings stay, so that one bad value does
	// not end a long-running watch. Unset, Update returns the error.
	OnInvalid func(error)

	prev   map[string]check.Finding
	warned map[string]bool
	last   []byte
}

// Update judges a new inventory. The first call emits the findings present.
func (w *Watcher) Update(inv *Inventory) error {
	out, err := Build(inv, w.Overlays, w.Output)
	if err != nil {
		if w.OnInvalid != nil && w.prev != nil {
			w.OnInvalid(err)
			return nil
		}
		return err
	}
	if w.warned == nil {
		w.warned = map[string]bool{}
	}
	for _, m := range out.Warnings {
		if !w.warned[m] && w.Warn != nil {
			w.Warn(m)
		}
		w.warned[m] = true
	}
	if w.Output != "" && !bytes.Equal(out.Data, w.last) {
		if err := WriteFile(w.Output, out.Data); err != nil {
			return fmt.Errorf("writing %s: %w", w.Output, err)
		}
		w.last = out.Data
	}
	res := check.Evaluate(estate.NewIndex(out.Result.Estate), out.Result.Policy, check.Options{Files: check.NewDiskFiles()})
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	stamp := now().UTC().Format(time.RFC3339Nano)
	cur := make(map[string]check.Finding, len(res.Findings))
	for _, f := range res.Findings {
		if f.Related == nil {
			f.Related = []string{}
		}
		cur[f.Key()] = f
	}
	var events []Event
	if w.prev == nil {
		for _, f := range res.Findings {
			events = append(events, Event{Time: stamp, Event: EventPresent, Finding: cur[f.Key()]})
		}
	} else {
		for k, f := range cur {
			if _, had := w.prev[k]; !had {
				events = append(events, Event{Time: stamp, Event: EventAppeared, Finding: f})
			}
		}
		for k, f := range w.prev {
			if _, has := cur[k]; !has {
				events = append(events, Event{Time: stamp, Event: EventResolved, Finding: f})
			}
		}
		sort.SliceStable(events, func(i, j int) bool {
			a, b := events[i].Finding, events[j].Finding
			if a.Severity != b.Severity {
				return a.Severity > b.Severity
			}
			return a.Key() < b.Key()
		})
	}
	w.prev = cur
	for _, ev := range events {
		if err := w.Emit(ev); err != nil {
			return err
		}
	}
	return nil
}

// JSONLines returns an Emit that writes each event as one line of JSON.
func JSONLines(out io.Writer) func(Event) error {
	var mu sync.Mutex
	return func(ev Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = out.Write(append(b, '\n'))
		return err
	}
}

// Webhook posts events as JSON to a URL, one request per event, from a
// queue of its own so that a slow receiver never delays the watch. A post
// that fails is retried twice; one that still fails is reported through
// warn and dropped. Messages name the URL without its user information.
type Webhook struct {
	url    string
	client *http.Client
	queue  chan Event
	done   chan struct{}
	warn   func(string)
}

// NewWebhook starts posting to rawURL.
func NewWebhook(rawURL string, warn func(string)) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--webhook wants an http:// or https:// URL")
	}
	h := &Webhook{url: rawURL, client: &http.Client{Timeout: 10 * time.Second},
		queue: make(chan Event, 4096), done: make(chan struct{}), warn: warn}
	go h.run(u.Scheme + "://" + u.Host) // the path may hold a token
	return h, nil
}

// Post queues ev; when the queue is full (the receiver is down for long),
// the event is dropped with a warning rather than blocking the watch.
func (h *Webhook) Post(ev Event) error {
	select {
	case h.queue <- ev:
	default:
		h.warn(fmt.Sprintf("webhook queue full; dropped a %s event for %s", ev.Event, ev.Finding.Subject))
	}
	return nil
}

// Close sends what is queued and stops, giving up after 10 s (a receiver
// that is down must not hold up the end of a watch).
func (h *Webhook) Close() {
	close(h.queue)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.warn("webhook: gave up sending the events still queued")
	}
}

func (h *Webhook) run(shown string) {
	defer close(h.done)
	for ev := range h.queue {
		body, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		var last error
		for attempt := range 3 {
			if attempt > 0 {
				time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
			}
			last = h.post(body)
			if last == nil {
				break
			}
		}
		if last != nil {
			h.warn(fmt.Sprintf("webhook %s: %v; dropped a %s event for %s", shown, last, ev.Event, ev.Finding.Subject))
		}
	}
}

func (h *Webhook) post(body []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		// The error quotes the URL, whose path may be a secret (many
		// webhook services put the token there): keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err
		}
		return errors.New("post failed")
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
