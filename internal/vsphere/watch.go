package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vguard-dev/vguard/internal/connector"
)

// TagRefresh is how often a watch re-reads tags: tag changes are not in
// the property collector's feed, so they are polled.
const TagRefresh = 30 * time.Second

// Watch follows the inventory through the property collector: one filter
// over a container view, the same properties a sync reads, and
// WaitForUpdatesEx. The first update holds every object; later ones only
// what changed. After each batch (and debounce more time, to gather the
// updates of one operation) it maps the whole inventory again and calls
// update. It returns when ctx ends (nil) or the session fails.
func Watch(ctx context.Context, ep *Endpoint, debounce time.Duration, update func(*connector.Inventory) error) error {
	s, err := Login(ctx, ep)
	if err != nil {
		return err
	}
	defer s.Logout(context.WithoutCancel(ctx))
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
	var tagsAt time.Time
	var tagAttrs *Raw
	dirty := make(chan struct{}, 1)
	waitErr := make(chan error, 1)
	// The collector's updates are applied to st by the waiting goroutine;
	// the loop below maps and judges, so a slow judgement never holds up
	// the feed.
	go func() {
		maxWait := int32(60)
		err := pc.WaitForUpdatesEx(ctx, &property.WaitOptions{Options: &types.WaitOptions{MaxWaitSeconds: &maxWait}},
			func(updates []types.ObjectUpdate) bool {
				st.apply(updates)
				select {
				case dirty <- struct{}{}:
				default:
				}
				return false
			})
		waitErr <- err
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-waitErr:
			if ctx.Err() != nil {
				return nil
			}
			return s.fail("waiting for updates", err)
		case <-dirty:
		}
		// Gather the rest of the operation's updates.
		select {
		case <-time.After(debounce):
		case <-ctx.Done():
			return nil
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
		if tagAttrs == nil || time.Since(tagsAt) > TagRefresh {
			tagAttrs = &Raw{Hosts: r.Hosts, VMs: r.VMs, Networks: r.Networks, Attrs: map[string]map[string]string{}}
			s.tagAttributes(ctx, tagAttrs)
			tagsAt = time.Now()
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
			return err
		}
		if err := update(inv); err != nil {
			return err
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
