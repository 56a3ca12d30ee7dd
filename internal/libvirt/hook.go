package libvirt

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// DefaultHookConfig is where the hook reads its configuration. libvirtd
// runs hooks with an almost empty environment, so a file is the reliable
// place; VGUARD_HOOK_CONFIG overrides it (for tests and odd layouts).
const DefaultHookConfig = "/etc/vguard/libvirt-hook.yaml"

// HookConfig is the hook's configuration file:
//
//	estate: [/var/lib/vguard/estate.yaml]  # what `vguard sync libvirt -o` wrote, plus any policy
//	hypervisor: hv-a                       # this host's name in the estate (default: its host name)
//	onError: closed                        # closed (refuse) | open (allow) when it cannot judge
//	stateDir: /run/vguard/hook             # incoming-migration markers (created 0700)
//	remote:                                # optional: let a vguard serve judge (and audit)
//	  url: https://vguard.example.com:8443
//	  tokenFile: /etc/vguard/hook.token    # or token: (an operator token)
//	  cacert: /etc/vguard/ca.pem
//	  timeout: 5s
type HookConfig struct {
	Estate     []string    `yaml:"estate,required"`
	Hypervisor string      `yaml:"hypervisor"`
	OnError    string      `yaml:"onError"`
	StateDir   string      `yaml:"stateDir"`
	Remote     *HookRemote `yaml:"remote"`
	// FailOpen is OnError == "open".
	FailOpen bool `yaml:"-"`
	// Candidates are the names tried for this host when hypervisor: is
	// not given (Hypervisor is the first until Resolve picks one).
	Candidates []string `yaml:"-"`
}

// HookRemote is the vguard serve that judges the hook's changes, so that
// the server's policy applies and every verdict is in its audit trail.
// The local estate is still read: it is what the domain XML is compared
// with to build the change.
type HookRemote struct {
	URL       string `yaml:"url,required"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"tokenFile"`
	CACert    string `yaml:"cacert"`
	Timeout   string `yaml:"timeout"`
	// Wait is Timeout parsed (DefaultRemoteTimeout when not given): the
	// hook runs inside libvirt's operation, which waits for it.
	Wait time.Duration `yaml:"-"`
}

// DefaultRemoteTimeout bounds each request of the hook to vguard serve.
const DefaultRemoteTimeout = 5 * time.Second

// check validates the section and reads the token file; relative paths
// are relative to dir. Errors never quote the token.
func (r *HookRemote) check(path, dir string) error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%s: remote.url: want http(s)://HOST[:PORT] (no user information)", path)
	}
	r.Wait = DefaultRemoteTimeout
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: remote.timeout: want a duration such as 5s, got %q", path, r.Timeout)
		}
		r.Wait = d
	}
	if r.CACert != "" && !filepath.IsAbs(r.CACert) {
		r.CACert = filepath.Join(dir, r.CACert)
	}
	switch {
	case r.Token != "" && r.TokenFile != "":
		return fmt.Errorf("%s: remote: give token or tokenFile, not both", path)
	case r.TokenFile != "":
		if !filepath.IsAbs(r.TokenFile) {
			r.TokenFile = filepath.Join(dir, r.TokenFile)
		}
		b, err := os.ReadFile(r.TokenFile)
		if err != nil {
			return fmt.Errorf("%s: remote.tokenFile: %w", path, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		r.Token = strings.TrimSpace(line)
		if r.Token == "" {
			return fmt.Errorf("%s: remote.tokenFile: %s is empty", path, r.TokenFile)
		}
	case r.Token == "":
		return fmt.Errorf("%s: remote: give token or tokenFile (an operator token of the server)", path)
	}
	return nil
}

// LoadHookConfig reads and validates the configuration. Relative estate
// paths are relative to the configuration file.
func LoadHookConfig(path string) (*HookConfig, error) {
	docs, perr := load.ReadDocuments(path)
	if perr != nil {
		return nil, perr
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want one YAML document, got %d", path, len(docs))
	}
	var c HookConfig
	if errs := syntax.Decode(path, docs[0], "", &c); len(errs) > 0 {
		return nil, load.Errors(errs)
	}
	switch c.OnError {
	case "", "closed":
	case "open":
		c.FailOpen = true
	default:
		return nil, fmt.Errorf("%s: onError: want closed or open, got %q", path, c.OnError)
	}
	if len(c.Estate) == 0 {
		return nil, fmt.Errorf("%s: estate: list at least one file or directory", path)
	}
	for i, p := range c.Estate {
		if !filepath.IsAbs(p) {
			c.Estate[i] = filepath.Join(filepath.Dir(path), p)
		}
	}
	switch {
	case c.StateDir == "":
		c.StateDir = DefaultStateDir
	case !filepath.IsAbs(c.StateDir):
		c.StateDir = filepath.Join(filepath.Dir(path), c.StateDir)
	}
	if c.Remote != nil {
		if err := c.Remote.check(path, filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	if c.Hypervisor == "" {
		c.Candidates = hostNames()
		if len(c.Candidates) == 0 {
			return nil, fmt.Errorf("%s: hypervisor not given and the host name is unknown", path)
		}
		c.Hypervisor = c.Candidates[0]
	}
	return &c, nil
}

// Incoming is the store of incoming-migration markers in StateDir.
func (c *HookConfig) Incoming() Incoming { return Incoming{Dir: c.StateDir} }

// hostNames are the names sync may have given this host: the host name,
// its short form, its fully qualified form, and the host's addresses (a
// qemu+ssh://root@10.0.0.5/system URI names the hypervisor 10.0.0.5).
func hostNames() []string {
	var names []string
	add := func(n string) {
		n = strings.TrimSuffix(n, ".")
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	h, err := os.Hostname()
	if err == nil {
		add(h)
		short, _, _ := strings.Cut(h, ".")
		add(short)
		if cname, err := net.LookupCNAME(h); err == nil {
			add(cname)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				add(ipn.IP.String())
			}
		}
	}
	return names
}

// Resolve picks, when hypervisor: was not given, the first of the host's
// names that the estate knows. It fails naming every name it tried, so
// that the operator can set hypervisor: to the name sync wrote.
func (c *HookConfig) Resolve(x *estate.Index) error {
	if len(c.Candidates) == 0 {
		if x.Hypervisors[c.Hypervisor] == nil {
			return fmt.Errorf("this host, hypervisor %q, is not in the estate (set hypervisor: in the hook configuration to the name sync wrote, or sync again)", c.Hypervisor)
		}
		return nil
	}
	for _, n := range c.Candidates {
		if x.Hypervisors[n] != nil {
			c.Hypervisor = n
			return nil
		}
	}
	return fmt.Errorf("this host is not in the estate under any of its names (tried %s); set hypervisor: in the hook configuration to the name sync wrote",
		strings.Join(c.Candidates, ", "))
}

// HookEvent is one call of libvirt's qemu hook: argv[1..4] are the domain
// name, the operation, the sub-operation and an extra argument ("-").
type HookEvent struct {
	Domain, Op, SubOp, Extra string
}

// ParseHookArgs reads the hook's arguments as libvirt passes them.
func ParseHookArgs(args []string) (HookEvent, error) {
	if len(args) < 3 || len(args) > 4 {
		return HookEvent{}, fmt.Errorf("want the arguments libvirt passes to a qemu hook (DOMAIN OPERATION SUB-OPERATION [EXTRA]), got %d", len(args))
	}
	ev := HookEvent{Domain: args[0], Op: args[1], SubOp: args[2], Extra: "-"}
	if len(args) == 4 {
		ev.Extra = args[3]
	}
	return ev, nil
}

// Judged reports whether vguard judges this event: the moments a domain is
// about to run here (prepare: start; migrate: incoming migration; restore:
// from a saved image; attach: adopting an outside QEMU process). Every
// other event is allowed without reading anything.
func (ev HookEvent) Judged() bool {
	if ev.SubOp != "begin" {
		return false
	}
	switch ev.Op {
	case "prepare", "migrate", "restore", "attach":
		return true
	}
	return false
}

// BridgeLabel is the hypervisor label prefix under which sync records the
// libvirt network that owns each host bridge, so that the hook (which must
// not call back into libvirt) maps a bridge NIC to its network the same way.
const BridgeLabel = "libvirt.vguard.dev/bridge."

// HookChange turns a domain about to run on hypervisor hv into the change
// it makes to the estate: create when the estate does not know the VM;
// otherwise migrate when it ran elsewhere, detach-nic and attach-nic for
// each NIC added, removed or moved to another network (matched by MAC),
// and update for the security attributes its <metadata> declares
// differently. An empty change means nothing changes. The name returned is
// the domain's name in the estate, as sync writes it: the name libvirt passes
// the hook may hold control characters, which sync escapes (connector.SafeName).
func HookChange(x *estate.Index, hv string, domXML string) (*change.Change, string, error) {
	if x.Hypervisors[hv] == nil {
		return nil, "", fmt.Errorf("this host, hypervisor %q, is not in the estate (set hypervisor: in the hook configuration, or sync again)", hv)
	}
	bridgeNet := map[string]string{}
	for k, v := range x.Hypervisors[hv].Labels {
		if b, ok := strings.CutPrefix(k, BridgeLabel); ok {
			bridgeNet[b] = v
		}
	}
	vm, _, err := DomainVM(domXML, hv, bridgeNet)
	if err != nil {
		return nil, "", err
	}
	// A domain whose escaped name met another's is NAME#UUID in the
	// estate (escapedDuplicates).
	if alt := x.VMs[vm.Name+"#"+vm.Identity.UUID]; alt != nil && vm.Identity.UUID != "" {
		vm.Name = alt.Name
	}
	c := &change.Change{File: "<libvirt hook>", Meta: estate.Meta{Name: "libvirt hook: domain " + vm.Name}}
	add := func(op *change.Operation) {
		op.Index = len(c.Operations)
		c.Operations = append(c.Operations, op)
	}
	old := x.VMs[vm.Name]
	if old == nil {
		spec, err := vmNode(vm)
		if err != nil {
			return nil, "", err
		}
		add(&change.Operation{Op: change.OpCreate, Spec: spec})
		return c, vm.Name, nil
	}
	if old.Hypervisor != hv {
		add(&change.Operation{Op: change.OpMigrate, VM: vm.Name, ToHypervisor: hv})
	}
	// NICs: matched by MAC; a NIC without a MAC (rare in a defined domain)
	// is matched by network.
	oldByKey := map[string]estate.NIC{}
	for _, n := range old.NICs {
		oldByKey[nicKey(n)] = n
	}
	newKeys := map[string]bool{}
	for _, n := range vm.NICs {
		newKeys[nicKey(n)] = true
	}
	var detach, attach []*change.Operation
	for _, n := range old.NICs {
		k := nicKey(n)
		if nn, kept := findNIC(vm.NICs, k); kept && nn.Network == n.Network {
			continue
		}
		detach = append(detach, &change.Operation{Op: change.OpDetachNIC, VM: vm.Name, Network: n.Network, MAC: n.MAC})
	}
	for _, n := range vm.NICs {
		k := nicKey(n)
		prev, had := oldByKey[k]
		if had && prev.Network == n.Network {
			continue
		}
		op := &change.Operation{Op: change.OpAttachNIC, VM: vm.Name, Network: n.Network, MAC: n.MAC}
		if had {
			op.Ports = prev.Ports // the NIC moved: its services go with it
		}
		attach = append(attach, op)
	}
	for _, op := range detach {
		add(op)
	}
	for _, op := range attach {
		add(op)
	}
	if set := attrPatch(old, vm); set != nil {
		add(&change.Operation{Op: change.OpUpdate, VM: vm.Name, Set: set})
	}
	return c, vm.Name, nil
}

// sameResources reports whether the domain's resources (now) are those
// the estate has (was), counting only what the domain XML gives.
func sameResources(was, now *estate.Resources) bool {
	if was == nil {
		return false
	}
	if now.CPUs > 0 && now.CPUs != was.CPUs || now.MemoryMiB > 0 && now.MemoryMiB != was.MemoryMiB {
		return false
	}
	return now.Limited == nil || was.Limited != nil && *was.Limited == *now.Limited
}

func nicKey(n estate.NIC) string {
	if n.MAC != "" {
		return "mac:" + estate.NormalizeMAC(n.MAC)
	}
	return "net:" + n.Network
}

func findNIC(nics []estate.NIC, key string) (estate.NIC, bool) {
	for _, n := range nics {
		if nicKey(n) == key {
			return n, true
		}
	}
	return estate.NIC{}, false
}

// attrPatch returns an update's `set` for the attributes the domain's
// metadata gives that differ from the estate, or nil. Attributes the
// metadata leaves out keep the estate's value (the overlay may give them).
func attrPatch(old, vm *estate.VM) *syntax.Node {
	set := &syntax.Node{Kind: syntax.MapNode}
	str := func(key, was, now string) {
		if now != "" && now != was {
			set.Items = append(set.Items, &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: key},
				&syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: now})
		}
	}
	str("owner", old.Owner, vm.Owner)
	str("app", old.App, vm.App)
	str("homeZone", old.HomeZone, vm.HomeZone)
	if vm.SecurityLevel != 0 {
		str("securityLevel", old.SecurityLevel.String(), vm.SecurityLevel.String())
	}
	if vm.Environment != 0 {
		str("environment", old.Environment.String(), vm.Environment.String())
	}
	if vm.Gateway && !old.Gateway {
		set.Items = append(set.Items, &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: "gateway"},
			&syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.BoolTag, Value: "true"})
	}
	// Labels drive separate and placement rules and service selectors. An
	// update's labels replace the VM's whole map, so the estate's labels
	// (from the overlay, say) are kept and the metadata's laid over them.
	labels, relabelled := maps.Clone(old.Labels), false
	for k, v := range vm.Labels {
		if was, ok := labels[k]; !ok || was != v {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[k], relabelled = v, true
		}
	}
	if relabelled {
		m := &syntax.Node{Kind: syntax.MapNode}
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			m.Items = append(m.Items, &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: k},
				&syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: labels[k]})
		}
		set.Items = append(set.Items, &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: "labels"}, m)
	}
	// Resources: vCPUs or memory grown, or a <cputune>/<memtune> limit
	// removed, are judged too (VG3xx capacity, VG304 unlimited).
	if r := vm.Resources; r != nil && (r.CPUs > 0 || r.MemoryMiB > 0) && !sameResources(old.Resources, r) {
		res := &syntax.Node{Kind: syntax.MapNode}
		key := func(k string) *syntax.Node {
			return &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.StrTag, Value: k}
		}
		num := func(v int64) *syntax.Node {
			return &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.IntTag, Value: strconv.FormatInt(v, 10)}
		}
		if r.CPUs > 0 {
			res.Items = append(res.Items, key("cpus"), num(int64(r.CPUs)))
		}
		if r.MemoryMiB > 0 {
			res.Items = append(res.Items, key("memoryMiB"), num(r.MemoryMiB))
		}
		if r.Limited != nil {
			res.Items = append(res.Items, key("limited"), &syntax.Node{Kind: syntax.ScalarNode, Tag: syntax.BoolTag, Value: strconv.FormatBool(*r.Limited)})
		}
		set.Items = append(set.Items, key("resources"), res)
	}
	if len(set.Items) == 0 {
		return nil
	}
	return set
}

// vmNode writes vm as the node of a create operation's spec.
func vmNode(vm *estate.VM) (*syntax.Node, error) {
	data, err := connector.EncodeVM(vm)
	if err != nil {
		return nil, err
	}
	docs, perr := load.ParseDocuments("<libvirt hook>", data)
	if perr != nil {
		return nil, perr
	}
	if len(docs) != 1 {
		return nil, errors.New("encoding the domain as a VM gave no document")
	}
	return docs[0], nil
}

// Describe lists a change's operations for messages.
func Describe(c *change.Change) string {
	ops := make([]string, len(c.Operations))
	for i, op := range c.Operations {
		ops[i] = op.String()
		if n := op.Spec.Get("name"); op.Op == change.OpCreate && n != nil {
			ops[i] = "create " + n.Value
		}
	}
	return strings.Join(ops, "; ")
}

// Arrives reports whether the event brings a domain to this host as if it
// were new (start, restore, adopting a process): it is then judged with
// every finding it carries, not only those its change introduces, since
// sync and watch put defined but stopped domains in the estate already.
// An incoming migration is judged by what it introduces only, so that a
// host can still be evacuated; so is the "prepare begin" that libvirt
// runs on the destination right after "migrate begin", which the hook
// tells from a start by the marker (Incoming) the migrate left.
func (ev HookEvent) Arrives() bool {
	return ev.Judged() && ev.Op != "migrate"
}

// CarriedFindings returns the findings at or above blockAt that name the VM
// (as subject or related object) once the change is made: the findings
// before it, less those the verdict resolves, plus those it introduces. A
// nil verdict is an empty change.
func CarriedFindings(before []check.Finding, v *change.Verdict, vm string, blockAt estate.Severity) []check.Finding {
	after := map[string]check.Finding{}
	for _, f := range before {
		after[f.Key()] = f
	}
	if v != nil {
		for _, f := range v.Resolved {
			delete(after, f.Key())
		}
		// Changed holds the findings whose message or severity the change
		// altered, as they are after it (a domain whose metadata raises its
		// hardening turns its VG101 from critical to high).
		for _, fs := range [][]check.Finding{v.Introduced, v.Changed} {
			for _, f := range fs {
				after[f.Key()] = f
			}
		}
	}
	subject := "vm/" + vm
	var out []check.Finding
	for _, f := range after {
		if f.Severity >= blockAt && (f.Subject == subject || slices.Contains(f.Related, subject)) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b check.Finding) int {
		if a.Severity != b.Severity {
			return cmp.Compare(b.Severity, a.Severity)
		}
		return strings.Compare(a.Key(), b.Key())
	})
	return out
}
