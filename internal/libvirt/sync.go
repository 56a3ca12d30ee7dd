package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Target is one hypervisor to read: a libvirt URI, and the name the
// hypervisor gets in the estate (empty: the URI's host, or else the name
// libvirtd reports for its host).
type Target struct {
	Name string
	URI  string
}

// ParseTarget reads a --uri value: a libvirt URI such as
// qemu+ssh://root@hv-a/system, optionally preceded by NAME= to name the
// hypervisor (hv-a=qemu:///system). The URI's password, if any, is never
// kept in messages (see Redact).
func ParseTarget(s string) (Target, error) {
	var t Target
	if name, rest, ok := strings.Cut(s, "="); ok && !strings.ContainsAny(name, ":/?") {
		t.Name, s = name, rest
	}
	if atAfterHost(s) {
		// Not quoted, not even redacted: which part is the password is
		// what cannot be told.
		which := "a --uri"
		if t.Name != "" {
			which = "--uri " + t.Name + "=..."
		}
		return t, fmt.Errorf("%s has an '@' after its host part (in the path, query or fragment): a password holding '@' followed by '/', '?' or '#' would be cut there, and part of it taken for the host and printed; write each '@' of a password, path or query value as %%40 (qemu+ssh://user:pa%%40ss@host/system)", which)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return t, fmt.Errorf("--uri %q is not a libvirt URI such as qemu:///system or qemu+ssh://host/system", Redact(s))
	}
	t.URI = s
	return t, nil
}

// atAfterHost reports whether uri has an '@' after the first '/', '?' or
// '#' that follows "scheme://". url.Parse ends the authority there and
// splits the user information at the last '@' before it, so a password
// such as "Sup3r@Secr3t/2024" becomes the password "Sup3r", the host
// "Secr3t" and the path "/2024@...": nothing would redact the rest.
func atAfterHost(uri string) bool {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return false
	}
	i := strings.IndexAny(rest, "/?#")
	return i >= 0 && strings.Contains(rest[i:], "@")
}

// Redact returns the URI without a password in its user information. A URI
// in which the password cannot be told from the rest (an '@' after the
// host part, see atAfterHost) is redacted whole but for its scheme.
func Redact(uri string) string {
	if atAfterHost(uri) {
		scheme, _, _ := strings.Cut(uri, "://")
		if scheme == "" || strings.Trim(strings.ToLower(scheme), "abcdefghijklmnopqrstuvwxyz0123456789+-.") != "" {
			scheme = "<redacted>"
		}
		return scheme + "://<redacted>"
	}
	u, err := url.Parse(uri)
	if err != nil {
		if i := strings.LastIndex(uri, "@"); i >= 0 {
			return "<redacted>" + uri[i:]
		}
		return uri
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Conn is a connection to one hypervisor's libvirtd.
type Conn struct {
	L    *golibvirt.Libvirt
	Name string // the hypervisor's name in the estate
	URI  string // redacted

	// timeout bounds the wait for each answer of a read (DefaultTimeout
	// when zero); progress is when the last answer came, in UnixNano.
	timeout  time.Duration
	progress atomic.Int64

	// listed, when set, is called by read after it listed the networks
	// and after it listed the domains, with "networks" or "domains": tests
	// change the daemon there, between the list and the reads of XML.
	listed func(what string)
}

// DefaultTimeout bounds connecting to a libvirtd and, during a read, the
// wait for each answer: a daemon that accepts the connection but never
// answers (stopped, wedged) must end a sync with an error, not hang it and
// the systemd timer or server loop that runs it.
const DefaultTimeout = 30 * time.Second

// Dial connects to the target's libvirtd and opens its URI, giving up after
// DefaultTimeout.
func Dial(t Target) (*Conn, error) { return DialTimeout(context.Background(), t, DefaultTimeout) }

// DialTimeout is Dial giving up after timeout (<= 0: DefaultTimeout) or
// when ctx ends. go-libvirt takes no context, so a connection that does not
// answer is abandoned to its goroutine, which ends when the peer answers
// or the socket fails.
func DialTimeout(ctx context.Context, t Target, timeout time.Duration) (*Conn, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if wedged.has(Redact(t.URI)) {
		return nil, fmt.Errorf("%s: an earlier connection to it has not answered yet, so no other is opened (is libvirtd wedged?)", Redact(t.URI))
	}
	u, err := url.Parse(t.URI)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Redact(t.URI), err)
	}
	done := make(chan dialResult, 1)
	go func() {
		l, err := golibvirt.ConnectToURI(u)
		done <- dialResult{l, err}
	}()
	var l *golibvirt.Libvirt
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %s", Redact(t.URI), redactErr(r.err, u))
		}
		l = r.l
	case <-timer.C:
		wedged.hold(Redact(t.URI), func() { abandon(done) })
		return nil, fmt.Errorf("%s: libvirtd did not answer the connection within %v (is it running, or stopped or wedged?)", Redact(t.URI), timeout)
	case <-ctx.Done():
		wedged.hold(Redact(t.URI), func() { abandon(done) })
		return nil, fmt.Errorf("%s: connecting: %w", Redact(t.URI), ctx.Err())
	}
	c := &Conn{L: l, Name: t.Name, URI: Redact(t.URI), timeout: timeout}
	if c.Name == "" {
		c.Name = u.Hostname()
	}
	if c.Name == "" {
		h, err := within(ctx, timeout, func() (string, error) { return l.ConnectGetHostname() })
		if err != nil {
			c.closeWithin(time.Second)
			return nil, fmt.Errorf("%s: asking for the host name: %w", c.URI, err)
		}
		c.Name = h
	}
	return c, nil
}

type dialResult struct {
	l   *golibvirt.Libvirt
	err error
}

// wedged holds the libvirtds a connection was given up on while it still
// waits for their answer. go-libvirt's calls take no context and its
// disconnect waits for the peer, so such a connection keeps its socket and
// goroutines until the peer answers; a scheduler retrying a wedged daemon
// (vguard serve, every few seconds for days) would pile them up. While one
// is pending for a target, no other connection to it is opened. It is
// process-wide because the sockets are.
var wedged = pendingSet{m: map[string]int{}}

type pendingSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (p *pendingSet) has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[key] > 0
}

// hold marks key pending while wait runs (in its own goroutine).
func (p *pendingSet) hold(key string, wait func()) {
	p.mu.Lock()
	p.m[key]++
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.m[key]--; p.m[key] <= 0 {
				delete(p.m, key)
			}
		}()
		wait()
	}()
}

// abandon disconnects a connection that answered after its caller gave up.
func abandon(done <-chan dialResult) {
	if r := <-done; r.err == nil {
		_ = r.l.Disconnect()
	}
}

// within runs f, giving up after d or when ctx ends; f is then left to
// finish on its own (go-libvirt's calls take no context).
func within[T any](ctx context.Context, d time.Duration, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var zero T
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		return zero, fmt.Errorf("libvirtd did not answer within %v", d)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// redactErr returns err's text with the URI's password removed.
func redactErr(err error, u *url.URL) string {
	msg := err.Error()
	if p, ok := u.User.Password(); ok {
		msg = connector.RedactSecret(msg, p)
	}
	return msg
}

// Close ends the connection. A peer that does not answer (a host that
// lost power) is given 5 s, then abandoned: closing must not hang a
// watch that is ending because of it.
func (c *Conn) Close() error { return c.closeWithin(5 * time.Second) }

func (c *Conn) closeWithin(d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.L.Disconnect() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		wedged.hold(c.URI, func() { <-done })
		return fmt.Errorf("%s: libvirtd did not answer the close; connection abandoned", c.URI)
	}
}

// host is what one hypervisor holds.
type host struct {
	hv       *estate.Hypervisor
	networks []*estate.Network
	domains  []domain
	warnings []string
}

type domain struct {
	vm     *estate.VM
	active bool
	raw    string // libvirt's name, before connector.SafeName
}

// readWithin is read, failing when libvirtd leaves a request unanswered
// for longer than c.timeout or when ctx ends: the read goes on in the
// background, and the connection is closed (the caller must not reuse it).
// Each answer restarts the clock, so a large host is not cut short.
func (c *Conn) readWithin(ctx context.Context) (*host, error) {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	type result struct {
		h   *host
		err error
	}
	done := make(chan result, 1)
	c.step()
	go func() {
		h, err := c.read()
		done <- result{h, err}
	}()
	tick := time.NewTicker(max(timeout/8, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			return r.h, r.err
		case <-ctx.Done():
			go c.closeWithin(timeout)
			return nil, fmt.Errorf("%s: reading: %w", c.URI, ctx.Err())
		case <-tick.C:
			if time.Since(time.Unix(0, c.progress.Load())) > timeout {
				go c.closeWithin(timeout)
				return nil, fmt.Errorf("%s: %w (no answer within %v while reading the host)", c.URI, errStuck, timeout)
			}
		}
	}
}

// errStuck is a read given up: its connection is being closed already.
var errStuck = errors.New("libvirtd stopped answering")

// step notes that libvirtd answered a request.
func (c *Conn) step() { c.progress.Store(time.Now().UnixNano()) }

// read reads one hypervisor: its capacity, networks and domains.
func (c *Conn) read() (*host, error) {
	h := &host{hv: &estate.Hypervisor{Name: c.Name}}
	_, memKiB, cpus, _, _, _, _, _, err := c.L.NodeGetInfo()
	c.step()
	if err != nil {
		return nil, fmt.Errorf("%s: node info: %w", c.URI, err)
	}
	h.hv.Capacity = &estate.Capacity{CPUs: int(cpus), MemoryMiB: int64(memKiB / 1024)}
	nets, _, err := c.L.ConnectListAllNetworks(1, 0)
	c.step()
	switch {
	case libvirtErr(err, golibvirt.ErrNoSupport):
		// No network driver (a modular daemon without virtnetworkd, or
		// hosts that bridge by hand): there are no libvirt networks, and
		// NICs are named after their bridge or device.
		h.warnings = append(h.warnings, c.Name+": libvirtd has no network driver; no libvirt networks read, NICs are named after their bridge or device")
		nets = nil
	case err != nil:
		return nil, fmt.Errorf("%s: listing networks: %w", c.URI, err)
	}
	if c.listed != nil {
		c.listed("networks")
	}
	bridgeNet := map[string]string{}
	for _, n := range nets {
		x, err := c.L.NetworkGetXMLDesc(n, 0)
		c.step()
		if libvirtErr(err, golibvirt.ErrNoNetwork) {
			// Undefined since the list: it is gone.
			h.warnings = append(h.warnings, fmt.Sprintf("%s: network %s went away while being read; skipped", c.Name, n.Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: network %s: %w", c.URI, n.Name, err)
		}
		netAndGroups, bridge, warns, err := NetworkOfXML(x)
		if err != nil {
			return nil, &mapError{fmt.Errorf("%s: %w", c.URI, err)}
		}
		for _, w := range warns {
			h.warnings = append(h.warnings, c.Name+": "+w)
		}
		net := netAndGroups[0]
		h.networks = append(h.networks, netAndGroups[1:]...)
		if bridge != "" {
			bridgeNet[bridge] = net.Name
			if h.hv.Labels == nil {
				h.hv.Labels = map[string]string{}
			}
			h.hv.Labels[BridgeLabel+bridge] = net.Name
		}
		h.networks = append(h.networks, net)
	}
	doms, _, err := c.L.ConnectListAllDomains(1, 0)
	c.step()
	if err != nil {
		return nil, fmt.Errorf("%s: listing domains: %w", c.URI, err)
	}
	if c.listed != nil {
		c.listed("domains")
	}
	for _, d := range doms {
		x, err := c.L.DomainGetXMLDesc(d, 0)
		c.step()
		if libvirtErr(err, golibvirt.ErrNoDomain) {
			// Undefined, or a transient domain destroyed, since the list:
			// routine on hosts that churn domains, and the reason a watch
			// reads again. It is gone; its event brings the next read.
			h.warnings = append(h.warnings, fmt.Sprintf("%s: domain %s went away while being read; skipped", c.Name, d.Name))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: domain %s: %w", c.URI, d.Name, err)
		}
		vm, gateway, w, err := domainVM(x, c.Name, bridgeNet)
		if err != nil {
			return nil, &mapError{fmt.Errorf("%s: %w", c.URI, err)}
		}
		h.warnings = append(h.warnings, w...)
		if d.ID > 0 {
			// A running domain's XML is the live one; `virsh metadata
			// --config` changes only the persistent definition. Attributes
			// the live metadata leaves out come from that definition
			// (a transient domain has none: the call fails, and the live
			// XML is all there is).
			px, err := c.L.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
			c.step()
			if err == nil {
				if pvm, _, err := DomainVM(px, c.Name, bridgeNet); err == nil {
					fillAttrs(vm, gateway != nil, pvm)
				} else {
					return nil, &mapError{fmt.Errorf("%s: persistent definition: %w", c.URI, err)}
				}
			}
		}
		h.domains = append(h.domains, domain{vm: vm, active: d.ID > 0, raw: d.Name})
	}
	return h, nil
}

// libvirtErr reports whether err is libvirt's error code.
func libvirtErr(err error, code golibvirt.ErrorNumber) bool {
	var lerr golibvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// Sync reads every target (one hypervisor each) and returns the inventory.
// Networks of the same name on several hypervisors are one network (as a
// VLAN trunked to every host is); a domain defined on several hypervisors
// (the inactive definition left behind by a migration) is the one that
// runs, or the first one read when none does.
func Sync(ctx context.Context, targets []Target) (*connector.Inventory, error) {
	return SyncTimeout(ctx, targets, DefaultTimeout)
}

// SyncTimeout is Sync with the timeout of connecting and of each request
// (<= 0: DefaultTimeout).
func SyncTimeout(ctx context.Context, targets []Target, timeout time.Duration) (*connector.Inventory, error) {
	if len(targets) == 0 {
		return nil, errors.New("no --uri given")
	}
	var hosts []*host
	var sources []string
	names := map[string]string{}
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := DialTimeout(ctx, t, timeout)
		if err != nil {
			return nil, err
		}
		if prev, dup := names[c.Name]; dup {
			c.Close()
			return nil, fmt.Errorf("%s and %s both name hypervisor %q; give one a name with --uri NAME=URI", prev, c.URI, c.Name)
		}
		names[c.Name] = c.URI
		h, err := c.readWithin(ctx)
		if !errors.Is(err, errStuck) && ctx.Err() == nil {
			c.Close() // readWithin closes one that stopped answering
		}
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
		sources = append(sources, c.URI)
	}
	return merge(hosts, "libvirt "+strings.Join(sources, " ")), nil
}

// merge builds the inventory of several hypervisors from copies of what
// was read, so that the overlay (which patches objects in place) never
// changes a host's facts that a watch reuses. Domains of one name are one
// domain (by libvirt's name: two names that meet only once escaped are
// two, see escapedDuplicates).
func merge(hosts []*host, source string) *connector.Inventory {
	inv := &connector.Inventory{Source: source}
	e := &inv.Estate
	nets := map[string]*estate.Network{}
	vms := map[string]domain{}
	for _, h := range hosts {
		hv := *h.hv
		hv.Labels = maps.Clone(h.hv.Labels)
		e.Hypervisors = append(e.Hypervisors, &hv)
		inv.Warnings = append(inv.Warnings, h.warnings...)
		for _, n0 := range h.networks {
			n := *n0
			n0 = &n
			if prev, ok := nets[n.Name]; ok {
				if prev.Zone == "" {
					prev.Zone = n.Zone
				} else if n.Zone != "" && n.Zone != prev.Zone {
					inv.Warnings = append(inv.Warnings, fmt.Sprintf("network %s: hypervisor %s puts it in zone %q, another in %q; kept %q",
						n.Name, h.hv.Name, n.Zone, prev.Zone, prev.Zone))
				}
				continue
			}
			nets[n.Name] = n0
		}
		for _, d := range h.domains {
			d.vm = d.vm.Clone()
			key := d.raw
			if key == "" {
				key = d.vm.Name
			}
			prev, dup := vms[key]
			switch {
			case !dup:
				vms[key] = d
			case d.active && !prev.active:
				vms[key] = d
			case d.active && prev.active:
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("domain %s runs on both %s and %s; kept the one on %s",
					d.vm.Name, prev.vm.Hypervisor, d.vm.Hypervisor, prev.vm.Hypervisor))
			}
		}
	}
	inv.Warnings = append(inv.Warnings, escapedDuplicates(vms)...)
	// NICs on host bridges or other devices name networks libvirt does not
	// define; they become networks of their own.
	for _, d := range vms {
		e.VMs = append(e.VMs, d.vm)
		for _, nic := range d.vm.NICs {
			if _, ok := nets[nic.Network]; !ok {
				nets[nic.Network] = &estate.Network{Name: nic.Network}
			}
		}
	}
	for _, n := range nets {
		e.Networks = append(e.Networks, n)
	}
	sort.Strings(inv.Warnings)
	inv.SortObjects()
	return inv
}

// escapedDuplicates renames the domains (keyed by libvirt's name) whose
// escaped names (connector.SafeName) meet: "web\t2" is written web%092, and
// a domain may really be named web%092. As vSphere duplicates are, all but
// one are written NAME#UUID, with a warning: the domain really named so
// keeps the name (its estate name is its libvirt name), else the first
// of their libvirt names in byte order. The hook finds a domain so
// renamed by its UUID (HookChange).
func escapedDuplicates(vms map[string]domain) []string {
	byName := map[string][]string{}
	for raw, d := range vms {
		byName[d.vm.Name] = append(byName[d.vm.Name], raw)
	}
	var warnings []string
	for name, raws := range byName {
		if len(raws) < 2 {
			continue
		}
		slices.SortFunc(raws, func(a, b string) int {
			// The literal name first, then libvirt's (byte) order.
			return cmp.Or(cmpBool(a != name, b != name), strings.Compare(a, b))
		})
		for _, raw := range raws[1:] {
			d := vms[raw]
			d.vm.Name = name + "#" + d.vm.Identity.UUID
			warnings = append(warnings, fmt.Sprintf("domains %q and %q are both written as %s; the one with UUID %s is written as %s",
				raws[0], raw, name, d.vm.Identity.UUID, d.vm.Name))
		}
	}
	return warnings
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// mapError is a read that failed on what libvirt holds (XML or metadata
// vguard cannot map), not on the connection.
type mapError struct{ err error }

func (e *mapError) Error() string { return e.err.Error() }
func (e *mapError) Unwrap() error { return e.err }

// fillAttrs gives vm the security attributes and labels of def (the
// persistent definition) that vm's own (live) metadata leaves out;
// hasGateway says whether it gives gateway (its false is a value).
func fillAttrs(vm *estate.VM, hasGateway bool, def *estate.VM) {
	if vm.Owner == "" {
		vm.Owner = def.Owner
	}
	if vm.App == "" {
		vm.App = def.App
	}
	if vm.HomeZone == "" {
		vm.HomeZone = def.HomeZone
	}
	if vm.SecurityLevel == 0 {
		vm.SecurityLevel = def.SecurityLevel
	}
	if vm.Environment == 0 {
		vm.Environment = def.Environment
	}
	if !hasGateway {
		vm.Gateway = def.Gateway
	}
	for k, v := range def.Labels {
		if _, ok := vm.Labels[k]; !ok {
			if vm.Labels == nil {
				vm.Labels = map[string]string{}
			}
			vm.Labels[k] = v
		}
	}
}
