package vsphere

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vguard-dev/vguard/internal/connector"
)

// TagRefresh is how often a watch re-reads tags by default: tag changes
// are not in the property collector's feed, so they are polled.
const TagRefresh = 30 * time.Second

// WatchOptions tune a watch. Zero values take the defaults.
type WatchOptions struct {
	// Debounce is how long to wait after a change for the rest of one
	// operation's changes.
	Debounce time.Duration
	// MaxWait is how long one WaitForUpdatesEx call may wait for a
	// change before vCenter answers "nothing yet" (default 60 s). Each
	// call also has an HTTP deadline of MaxWait+30 s, so that a dead TCP
	// link is noticed.
	MaxWait time.Duration
	// TagRefresh is how often tags are re-read, change or not (default
	// TagRefresh).
	TagRefresh time.Duration
	// Warn, when set, receives the error of an inventory that does not
	// map (an attribute value outside the vocabulary) after the first
	// update; that inventory is skipped and the watch goes on. Unset, the
	// watch ends with the error.
	Warn func(string)
}

// Watch is WatchWith with the default options and the given debounce.
func Watch(ctx context.Context, ep *Endpoint, debounce time.Duration, update func(*connector.Inventory) error) error {
	return WatchWith(ctx, ep, WatchOptions{Debounce: debounce}, update)
}

// WatchWith follows the inventory through the property collector: one
// filter over a container view, the same properties a sync reads, and
// WaitForUpdatesEx called in a loop from the last version. The first update
// holds every object; later ones only what changed. After each batch (and
// Debounce more time, to gather the updates of one operation), and every
// TagRefresh (tags have no change feed), it maps the whole inventory again
// and calls update. It returns when ctx ends (nil) or the session fails.
func WatchWith(ctx context.Context, ep *Endpoint, o WatchOptions, update func(*connector.Inventory) error) error {
	if o.MaxWait <= 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.TagRefresh <= 0 {
		o.TagRefresh = TagRefresh
	}
	s, err := Login(ctx, ep)
	if err != nil {
		return err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	s.watching = true
	c := s.C
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder,
		[]string{"HostSystem", "VirtualMachine", "Network", "ClusterComputeResource"}, true)
	if err != nil {
		return s.fail("creating a container view", err)
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	pc, err := property.DefaultCollector(c).Create(ctx)
	if err != nil {
		return s.fail("creating a property collector", err)
	}
	defer pc.Destroy(context.WithoutCancel(ctx))
	yes, no := true, false
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj:       v.Reference(),
			Skip:      &yes,
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view", Skip: &no}},
		}},
		PropSet: []types.PropertySpec{
			{Type: "HostSystem", PathSet: hostProps},
			{Type: "VirtualMachine", PathSet: vmProps},
			{Type: "Network", PathSet: netProps},
			{Type: "DistributedVirtualPortgroup", PathSet: dvpgProps},
			{Type: "ClusterComputeResource", PathSet: clusterProps},
		},
	}
	if _, err := pc.CreateFilter(ctx, types.CreateFilter{Spec: spec}); err != nil {
		return s.fail("creating a property filter", err)
	}

	st := newState()
	dirty := make(chan struct{}, 1)
	waitErr := make(chan error, 1)
	// The collector's updates are applied to st by the waiting goroutine;
	// the loop below maps and judges, so a slow judgement never holds up
	// the feed.
	go func() {
		waitErr <- waitLoop(ctx, c, pc.Reference(), o.MaxWait, st.apply, func() {
			select {
			case dirty <- struct{}{}:
			default:
			}
		})
	}()
	tick := time.NewTicker(o.TagRefresh)
	defer tick.Stop()
	var tagAttrs *Raw // the last good tag read
	started := false
	mapped := false // an inventory was mapped and handed to update
	for {
		refreshTags := tagAttrs == nil
		tagsOnly := false // a tag refresh with no inventory change
		select {
		case <-ctx.Done():
			return nil
		case err := <-waitErr:
			if ctx.Err() != nil {
				return nil
			}
			return s.fail("waiting for updates", err)
		case <-dirty:
			started = true
			// Gather the rest of the operation's updates.
			select {
			case <-time.After(o.Debounce):
			case <-ctx.Done():
				return nil
			}
		case <-tick.C:
			if !started {
				continue
			}
			refreshTags, tagsOnly = true, true
		}
		r, err := st.raw()
		if err != nil {
			return fmt.Errorf("decoding updates from %s: %w", ep, err)
		}
		if err := s.customAttributes(ctx, r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if refreshTags {
			fresh := &Raw{Hosts: r.Hosts, VMs: r.VMs, Networks: r.Networks, Attrs: map[string]map[string]string{}}
			switch err := s.tagAttributes(ctx, fresh); {
			case ctx.Err() != nil:
				return nil
			case err == nil:
				if tagsOnly && mapped && reflect.DeepEqual(fresh.Attrs, tagAttrs.Attrs) && slices.Equal(fresh.Warnings, tagAttrs.Warnings) {
					continue // nothing changed: no need to judge again
				}
				tagAttrs = fresh
			case tagAttrs == nil:
				// Without a first good read the estate would look
				// complete while lacking every tag-based attribute.
				return err
			default:
				// Keep the last good tags rather than dropping every
				// tag-based finding until the next refresh.
				r.Warnings = append(r.Warnings, fmt.Sprintf("%v; kept the tags read before", err))
			}
		}
		for id, attrs := range tagAttrs.Attrs {
			if r.Attrs[id] == nil {
				r.Attrs[id] = map[string]string{}
			}
			for k, val := range attrs {
				r.Attrs[id][k] = val // tags win, as in a sync
			}
		}
		r.Warnings = append(r.Warnings, tagAttrs.Warnings...)
		inv, err := r.Map("vsphere " + ep.String())
		if err != nil {
			if o.Warn != nil && mapped {
				o.Warn(fmt.Sprintf("%v; kept the last good estate until the next change", err))
				continue
			}
			return err
		}
		mapped = true
		if err := update(inv); err != nil {
			return err
		}
	}
}

// waitLoop calls WaitForUpdatesEx from the last version until ctx ends or a
// call fails, handing each batch of object updates to apply. vCenter
// answers an empty result after maxWait without changes: that only means
// "nothing yet", and the next call resumes from the same version (govmomi's
// own WaitForUpdatesEx returns there, and a new call of it would start from
// scratch). Each call has an HTTP deadline of maxWait+30 s.
//
// A large update comes in pages (Truncated); done is called once the last
// page of a batch is applied, so that the first inventory is never mapped
// from part of the objects.
func waitLoop(ctx context.Context, c *vim25.Client, pc types.ManagedObjectReference, maxWait time.Duration,
	apply func([]types.ObjectUpdate), done func()) error {
	secs := int32(max(1, maxWait/time.Second))
	req := types.WaitForUpdatesEx{This: pc, Options: &types.WaitOptions{MaxWaitSeconds: &secs}}
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
		res, err := methods.WaitForUpdatesEx(callCtx, c, &req)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		set := res.Returnval
		if set == nil {
			continue // maxWait passed without a change
		}
		req.Version = set.Version
		for _, fs := range set.FilterSet {
			apply(fs.ObjectSet)
		}
		if set.Truncated == nil || !*set.Truncated {
			done()
		}
	}
}

// state is the objects the collector has reported, with their properties.
type state struct {
	ch   chan struct{} // a one-slot lock that a select could also wait on
	objs map[types.ManagedObjectReference]map[string]any
}

func newState() *state {
	s := &state{ch: make(chan struct{}, 1), objs: map[types.ManagedObjectReference]map[string]any{}}
	return s
}

func (s *state) lock()   { s.ch <- struct{}{} }
func (s *state) unlock() { <-s.ch }

func (s *state) apply(updates []types.ObjectUpdate) {
	s.lock()
	defer s.unlock()
	for _, u := range updates {
		switch u.Kind {
		case types.ObjectUpdateKindLeave:
			delete(s.objs, u.Obj)
			continue
		}
		props := s.objs[u.Obj]
		if props == nil {
			props = map[string]any{}
			s.objs[u.Obj] = props
		}
		for _, c := range u.ChangeSet {
			switch c.Op {
			case types.PropertyChangeOpRemove, types.PropertyChangeOpIndirectRemove:
				delete(props, c.Name)
			default:
				props[c.Name] = c.Val
			}
		}
	}
}

// raw decodes the current objects as a sync's Raw.
func (s *state) raw() (*Raw, error) {
	s.lock()
	byType := map[string][]types.ObjectContent{}
	for ref, props := range s.objs {
		oc := types.ObjectContent{Obj: ref}
		for name, val := range props {
			oc.PropSet = append(oc.PropSet, types.DynamicProperty{Name: name, Val: val})
		}
		byType[ref.Type] = append(byType[ref.Type], oc)
	}
	s.unlock()
	r := &Raw{Attrs: map[string]map[string]string{}}
	nets := append(append([]types.ObjectContent(nil), byType["Network"]...), byType["DistributedVirtualPortgroup"]...)
	nets = append(nets, byType["OpaqueNetwork"]...)
	var errs []error
	for _, l := range []struct {
		content []types.ObjectContent
		dst     any
	}{
		{byType["HostSystem"], &r.Hosts},
		{byType["VirtualMachine"], &r.VMs},
		{nets, &r.Networks},
		{byType["DistributedVirtualPortgroup"], &r.DVPGs},
		{byType["ClusterComputeResource"], &r.Clusters},
	} {
		if len(l.content) == 0 {
			continue
		}
		errs = append(errs, mo.LoadObjectContent(l.content, l.dst))
	}
	return r, errors.Join(errs...)
}
