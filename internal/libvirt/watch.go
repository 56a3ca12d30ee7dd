package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vguard-dev/vguard/internal/connector"
)

// watchedEvents are the domain events that can change what vguard knows:
// defined, undefined, started, stopped, migrated (lifecycle), devices
// hot-plugged or unplugged, and metadata edited.
var watchedEvents = []golibvirt.DomainEventID{
	golibvirt.DomainEventIDLifecycle,
	golibvirt.DomainEventIDDeviceAdded,
	golibvirt.DomainEventIDDeviceRemoved,
	golibvirt.DomainEventIDMetadataChange,
}

// WatchOptions tune a watch. Zero values take the defaults.
type WatchOptions struct {
	// Debounce is how long to wait after an event for the rest of one
	// operation's events.
	Debounce time.Duration
	// Keepalive is how often each connection is checked with a call that
	// libvirtd must answer within KeepaliveTimeout (defaults 10 s and
	// 10 s). go-libvirt has no keepalive of its own: without this, a
	// half-open connection (a host lost power, a network partition) would
	// leave the watch waiting for events forever, looking healthy.
	Keepalive        time.Duration
	KeepaliveTimeout time.Duration
	// Warn, when set, receives the error of a hypervisor whose domains or
	// networks no longer map (a metadata value outside the vocabulary)
	// after the first read; its last good read is kept and the watch goes
	// on. Unset, the watch ends with the error.
	Warn func(string)
	// Timeout bounds connecting and each request of a read
	// (DefaultTimeout when zero); the event subscriptions wait as long
	// as they must, watched by the keepalive.
	Timeout time.Duration
}

// Watch is WatchWith with the default options and the given debounce.
func Watch(ctx context.Context, targets []Target, debounce time.Duration, update func(*connector.Inventory) error) error {
	return WatchWith(ctx, targets, WatchOptions{Debounce: debounce}, update)
}

// WatchWith reads every target, calls update with the inventory, then
// follows each hypervisor's domain events: after an event (and Debounce
// more time, to gather the events of one operation) it reads that
// hypervisor again and calls update with the whole inventory. It returns
// nil when ctx ends, or an error when a connection is lost or stops
// answering.
func WatchWith(ctx context.Context, targets []Target, o WatchOptions, update func(*connector.Inventory) error) error {
	if o.Keepalive <= 0 {
		o.Keepalive = 10 * time.Second
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 10 * time.Second
	}
	debounce := o.Debounce
	// The goroutines below end with this context, however the watch ends.
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(targets) == 0 {
		return errors.New("no --uri given")
	}
	var conns []*Conn
	defer func() {
		for _, c := range conns {
			c.closeWithin(o.KeepaliveTimeout)
		}
	}()
	names := map[string]string{}
	for _, t := range targets {
		c, err := DialTimeout(ctx, t, o.Timeout)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if prev, dup := names[c.Name]; dup {
			return fmt.Errorf("%s and %s both name hypervisor %q; give one a name with --uri NAME=URI", prev, c.URI, c.Name)
		}
		names[c.Name] = c.URI
	}
	// Each host has its own pending flag, and one wake-up of capacity 1
	// says that some flag is set: a burst of events on one host (a mass
	// start) can then never crowd out another host's event, as it did
	// through a shared queue that dropped signals when full.
	pending := make([]atomic.Bool, len(conns))
	wake := make(chan struct{}, 1)
	// A lost connection is reported once per goroutine that notices it.
	lost := make(chan error, 2*len(conns))
	for i, c := range conns {
		for _, id := range watchedEvents {
			ch, err := c.L.SubscribeEvents(ctx, id, golibvirt.OptDomain{})
			if err != nil {
				return fmt.Errorf("%s: subscribing to domain events: %w", c.URI, err)
			}
			go func() {
				for range ch {
					pending[i].Store(true)
					select {
					case wake <- struct{}{}:
					default: // a wake-up is pending already; it reads every flag
					}
				}
			}()
		}
		go func() {
			select {
			case <-c.L.Disconnected():
				lost <- fmt.Errorf("%s: the connection to libvirtd was lost", c.URI)
			case <-ctx.Done():
			}
		}()
		go func() {
			tick := time.NewTicker(o.Keepalive)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := c.ping(ctx, o.KeepaliveTimeout); err != nil {
					lost <- err
					return
				}
			}
		}()
	}
	hosts := make([]*host, len(conns))
	sources := make([]string, len(conns))
	for i, c := range conns {
		h, err := c.readWithin(ctx)
		if err != nil {
			return err
		}
		hosts[i], sources[i] = h, c.URI
	}
	source := "libvirt " + strings.Join(sources, " ")
	if err := update(merge(hosts, source)); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-lost:
			if outer.Err() != nil {
				return nil
			}
			return err
		case <-wake:
		}
		timer := time.After(debounce)
	gather:
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-lost:
				return err
			case <-wake: // more events; the flags say whose
			case <-timer:
				break gather
			}
		}
		reread := false
		for i := range conns {
			// Cleared before the read: an event during it sets the flag
			// again and leads to another read (its wake-up may then find
			// the flag read already, and nothing to do).
			if !pending[i].Swap(false) {
				continue
			}
			reread = true
			h, err := conns[i].readWithin(ctx)
			var merr *mapError
			switch {
			case err == nil:
				hosts[i] = h
			case ctx.Err() != nil:
				return nil
			case o.Warn != nil && errors.As(err, &merr):
				o.Warn(fmt.Sprintf("%v; kept the last good read of %s until the next change", err, conns[i].Name))
			default:
				return err
			}
		}
		if !reread {
			continue
		}
		if err := update(merge(hosts, source)); err != nil {
			return err
		}
	}
}

// ping asks libvirtd for its version and fails when no answer comes within
// timeout.
func (c *Conn) ping(ctx context.Context, timeout time.Duration) error {
	answered := make(chan error, 1)
	go func() {
		_, err := c.L.ConnectGetLibVersion()
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			return fmt.Errorf("%s: libvirtd keepalive: %w", c.URI, err)
		}
		return nil
	case <-ctx.Done():
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: libvirtd did not answer within %v; the connection is treated as lost", c.URI, timeout)
	}
}
