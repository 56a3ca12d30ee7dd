// Package estate is vguard's domain model: the facts of a virtualized estate
// (zones, networks, hypervisors, datastores, images, VMs, services,
// firewalls) and the policy they are judged against, as documents.md defines
// them. It imports nothing of vguard's own: loading, checking and reporting
// build on it, never the other way round.
package estate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Pos is where an object was defined: a file and a 1-based line. The zero
// Pos means "unknown" (an object made by a program rather than read).
type Pos struct {
	File string `yaml:"-" json:"-"`
	Line int    `yaml:"-" json:"-"`
}

// SetPos records where the object was read; the decoder calls it.
func (p *Pos) SetPos(file string, line int) { p.File, p.Line = file, line }

// Where returns the position itself, for code that holds an embedding type.
func (p Pos) Where() Pos { return p }

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Meta is the optional metadata of every document.
type Meta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

// Estate is the merged set of facts of one run.
type Estate struct {
	Meta        Meta
	Zones       []*Zone
	Networks    []*Network
	Hypervisors []*Hypervisor
	Datastores  []*Datastore
	Images      []*Image
	VMs         []*VM
	Services    []*Service
	Firewalls   []*Firewall
}

// Zone is a security zone; networks belong to exactly one.
type Zone struct {
	Pos      `yaml:"-"`
	Name     string   `yaml:"name,required"`
	Exposure Exposure `yaml:"exposure,required"`
}

// Network is a VLAN or port group.
type Network struct {
	Pos     `yaml:"-"`
	Name    string         `yaml:"name,required"`
	Zone    string         `yaml:"zone,required"`
	VLAN    *int           `yaml:"vlan"`
	Purpose NetworkPurpose `yaml:"purpose"`
}

// Capacity of a hypervisor.
type Capacity struct {
	CPUs      int   `yaml:"cpus"`
	MemoryMiB int64 `yaml:"memoryMiB"`
}

// Hypervisor is a host that runs VMs.
type Hypervisor struct {
	Pos                `yaml:"-"`
	Name               string            `yaml:"name,required"`
	Cluster            string            `yaml:"cluster"`
	FailureDomain      string            `yaml:"failureDomain"`
	Capacity           *Capacity         `yaml:"capacity"`
	ManagementNetwork  string            `yaml:"managementNetwork"`
	MigrationNetwork   string            `yaml:"migrationNetwork"`
	MigrationEncrypted bool              `yaml:"migrationEncrypted"`
	Labels             map[string]string `yaml:"labels"`
}

// Datastore is a database, share or volume that VMs reach with credentials.
type Datastore struct {
	Pos            `yaml:"-"`
	Name           string         `yaml:"name,required"`
	Classification Classification `yaml:"classification"`
	Owner          string         `yaml:"owner"`
	Writers        Writers        `yaml:"writers"`
	AuthorizedApps []string       `yaml:"authorizedApps"`
}

// Image is a VM image, possibly a golden master that copies are made from.
type Image struct {
	Pos     `yaml:"-"`
	Name    string `yaml:"name,required"`
	Version int    `yaml:"version,required"`
	Master  bool   `yaml:"master"`
	// Manifest and Scan are paths; the loader makes them relative to the
	// working directory (they are written relative to the defining file).
	Manifest string `yaml:"manifest"`
	Scan     string `yaml:"scan"`
}

// Ref is the image's reference, name@version.
func (im *Image) Ref() ImageRef { return ImageRef{Name: im.Name, Version: im.Version} }

// ImageRef names one version of an image: "web-master@3" or
// {name: web-master, version: 3}.
type ImageRef struct {
	Name    string `yaml:"name,required"`
	Version int    `yaml:"version,required"`
}

func (r ImageRef) String() string { return r.Name + "@" + strconv.Itoa(r.Version) }

// MarshalText writes the short form.
func (r ImageRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the short form "name@version".
func (r *ImageRef) UnmarshalText(b []byte) error {
	s := string(b)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return fmt.Errorf("image reference %q is not NAME@VERSION", s)
	}
	v, err := strconv.Atoi(s[at+1:])
	if err != nil || v < 1 {
		return fmt.Errorf("image reference %q: version must be an integer >= 1", s)
	}
	r.Name, r.Version = s[:at], v
	return nil
}

// VM is a virtual machine.
type VM struct {
	Pos           `yaml:"-"`
	Name          string            `yaml:"name,required"`
	Hypervisor    string            `yaml:"hypervisor,required"`
	Owner         string            `yaml:"owner"`
	App           string            `yaml:"app"`
	Environment   Environment       `yaml:"environment"`
	SecurityLevel SecurityLevel     `yaml:"securityLevel"`
	HomeZone      string            `yaml:"homeZone"`
	Gateway       bool              `yaml:"gateway"`
	NICs          []NIC             `yaml:"nics"`
	Identity      Identity          `yaml:"identity"`
	Image         *ImageRef         `yaml:"image"`
	Manifest      string            `yaml:"manifest"`
	Scan          string            `yaml:"scan"`
	Credentials   []Credential      `yaml:"credentials"`
	Resources     *Resources        `yaml:"resources"`
	Labels        map[string]string `yaml:"labels"`
}

// NIC is one network attachment of a VM.
type NIC struct {
	Pos     `yaml:"-"`
	Network string      `yaml:"network,required"`
	MAC     string      `yaml:"mac"`
	Ports   []PortRange `yaml:"ports"`
}

// Identity is what a clone copies unless it is sanitized.
type Identity struct {
	UUID        string   `yaml:"uuid"`
	MachineID   string   `yaml:"machineId"`
	Hostname    string   `yaml:"hostname"`
	SSHHostKeys []string `yaml:"sshHostKeys"`
}

// Empty reports whether no identity value is known.
func (id *Identity) Empty() bool {
	return id.UUID == "" && id.MachineID == "" && id.Hostname == "" && len(id.SSHHostKeys) == 0
}

// Credential gives a VM access to a datastore.
type Credential struct {
	Pos       `yaml:"-"`
	Datastore string `yaml:"datastore,required"`
	Access    Access `yaml:"access,required"`
	Path      string `yaml:"path"`
}

// Resources a VM is given; Limited is nil when unknown.
type Resources struct {
	CPUs      int   `yaml:"cpus"`
	MemoryMiB int64 `yaml:"memoryMiB"`
	Limited   *bool `yaml:"limited"`
}

// PortRange is an inclusive range of TCP/UDP ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi int }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int) bool { return p >= r.Lo && p <= r.Hi }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
}

// MarshalText writes "443" or "8000-8080".
func (r PortRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads 443 or "8000-8080".
func (r *PortRange) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	bb := a
	var err2 error
	if isRange {
		bb, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil || a < 0 || bb > 65535 || a > bb {
		return fmt.Errorf("port %q is not a port (0-65535) or a range LOW-HIGH", s)
	}
	r.Lo, r.Hi = a, bb
	return nil
}

// Selector matches VMs: every given field must match.
type Selector struct {
	App         string            `yaml:"app"`
	Owner       string            `yaml:"owner"`
	Environment Environment       `yaml:"environment"`
	Labels      map[string]string `yaml:"labels"`
}

// Empty reports whether the selector has no field (and so matches every VM).
func (s *Selector) Empty() bool {
	return s.App == "" && s.Owner == "" && s.Environment == 0 && len(s.Labels) == 0
}

// Matches reports whether vm has every field the selector gives.
func (s *Selector) Matches(vm *VM) bool {
	if s.App != "" && vm.App != s.App {
		return false
	}
	if s.Owner != "" && vm.Owner != s.Owner {
		return false
	}
	if s.Environment != 0 && vm.Environment != s.Environment {
		return false
	}
	for k, v := range s.Labels {
		if got, ok := vm.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Service is a set of VMs that provide one function together.
type Service struct {
	Pos            `yaml:"-"`
	Name           string      `yaml:"name,required"`
	Members        []string    `yaml:"members"`
	Selector       *Selector   `yaml:"selector"`
	MinAvailable   int         `yaml:"minAvailable"`
	MaxUnavailable int         `yaml:"maxUnavailable"`
	Spread         Spread      `yaml:"spread"`
	Criticality    Criticality `yaml:"criticality"`
}

// SetDefaults gives a new service the defaults of documents.md before its
// fields are read.
func (s *Service) SetDefaults() {
	s.MinAvailable, s.MaxUnavailable = 1, 1
	s.Spread, s.Criticality = SpreadHypervisor, CriticalityStandard
}

// Firewall filters the inbound traffic of the networks it protects.
type Firewall struct {
	Pos           `yaml:"-"`
	Name          string         `yaml:"name,required"`
	Protects      []string       `yaml:"protects"`
	DefaultAction Action         `yaml:"defaultAction"`
	Rules         []FirewallRule `yaml:"rules"`
}

// FirewallRule is one rule; the first match wins.
type FirewallRule struct {
	Pos    `yaml:"-"`
	From   string      `yaml:"from,required"`
	Ports  []PortRange `yaml:"ports"`
	Action Action      `yaml:"action,required"`
}

// FromInternet and FromAny are the reserved source words of a rule.
const (
	FromInternet = "internet"
	FromAny      = "any"
)

// MatchesPort reports whether the rule's ports cover p (no ports = all).
func (r *FirewallRule) MatchesPort(p int) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, pr := range r.Ports {
		if pr.Contains(p) {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of vm: changing the copy's NICs, identity,
// credentials, resources or labels leaves vm as it was.
func (vm *VM) Clone() *VM {
	c := *vm
	c.NICs = make([]NIC, len(vm.NICs))
	for i, n := range vm.NICs {
		n.Ports = slices.Clone(n.Ports)
		c.NICs[i] = n
	}
	if vm.NICs == nil {
		c.NICs = nil
	}
	c.Identity.SSHHostKeys = slices.Clone(vm.Identity.SSHHostKeys)
	if vm.Image != nil {
		im := *vm.Image
		c.Image = &im
	}
	c.Credentials = slices.Clone(vm.Credentials)
	if vm.Resources != nil {
		r := *vm.Resources
		if r.Limited != nil {
			l := *r.Limited
			r.Limited = &l
		}
		c.Resources = &r
	}
	c.Labels = maps.Clone(vm.Labels)
	return &c
}
