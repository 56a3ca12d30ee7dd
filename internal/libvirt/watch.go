package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Watch reads every target, calls update with the inventory, then follows
// each hypervisor's domain events: after an event (and debounce more time,
// to gather the events of one operation) it reads that hypervisor again
// and calls update with the whole inventory. It returns nil when ctx ends,
// or an error when a connection is lost.
func Watch(ctx context.Context, targets []Target, debounce time.Duration, update func(*connector.Inventory) error) error {
	if len(targets) == 0 {
		return errors.New("no --uri given")
	}
	var conns []*Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	names := map[string]string{}
	for _, t := range targets {
		c, err := Dial(t)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if prev, dup := names[c.Name]; dup {
			return fmt.Errorf("%s and %s both name hypervisor %q; give one a name with --uri NAME=URI", prev, c.URI, c.Name)
		}
		names[c.Name] = c.URI
	}
	type signal struct {
		host int
		err  error
	}
	sig := make(chan signal, 64)
	for i, c := range conns {
		for _, id := range watchedEvents {
			ch, err := c.L.SubscribeEvents(ctx, id, golibvirt.OptDomain{})
			if err != nil {
				return fmt.Errorf("%s: subscribing to domain events: %w", c.URI, err)
			}
			go func() {
				for range ch {
					select {
					case sig <- signal{host: i}:
					default: // a re-read is pending already
					}
				}
			}()
		}
		go func() {
			select {
			case <-c.L.Disconnected():
				sig <- signal{host: i, err: fmt.Errorf("%s: the connection to libvirtd was lost", c.URI)}
			case <-ctx.Done():
			}
		}()
	}
	hosts := make([]*host, len(conns))
	sources := make([]string, len(conns))
	for i, c := range conns {
		h, err := c.read()
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
		dirty := map[int]bool{}
		select {
		case <-ctx.Done():
			return nil
		case s := <-sig:
			if s.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return s.err
			}
			dirty[s.host] = true
		}
		timer := time.After(debounce)
	gather:
		for {
			select {
			case <-ctx.Done():
				return nil
			case s := <-sig:
				if s.err != nil {
					return s.err
				}
				dirty[s.host] = true
			case <-timer:
				break gather
			}
		}
		for i := range dirty {
			h, err := conns[i].read()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			hosts[i] = h
		}
		if err := update(merge(hosts, source)); err != nil {
			return err
		}
	}
}
