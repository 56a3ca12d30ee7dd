package estate

// Policy is the resolved set of rules of one run: the merge of every Policy
// document, with the defaults of documents.md for what none of them set.
type Policy struct {
	Meta Meta
	// ZoneHardening is the minimum VM security level for a NIC in a zone,
	// indexed by the zone's Exposure.
	ZoneHardening           [ExposureRestricted + 1]SecurityLevel
	ExposedHostMinLevel     SecurityLevel
	DedicatedClassification Classification
	SensitivePorts          []int
	Overcommit              Overcommit
	ResourceLimits          ResourceLimits
	MasterLag               int
	Separate                []*SeparateRule
	Placement               []*PlacementRule
	Change                  ChangePolicy
	// Severity overrides the default severity of a check, by check ID.
	Severity map[string]Severity
	// Disable lists check IDs not to run.
	Disable []string
}

// Overcommit is how far a cluster's capacity may be oversubscribed.
type Overcommit struct {
	CPU    float64 `yaml:"cpu"`
	Memory float64 `yaml:"memory"`
}

// ChangePolicy governs how changes are judged.
type ChangePolicy struct {
	BlockAt        Severity  `yaml:"blockAt"`
	CrossZoneMoves CrossZone `yaml:"crossZoneMoves"`
}

// SeparateRule bans VMs of two different groups from sharing a scope unit.
type SeparateRule struct {
	Pos    `yaml:"-"`
	Name   string     `yaml:"name,required"`
	Scope  Scope      `yaml:"scope"`
	Groups []Selector `yaml:"groups,required"`
}

// SetDefaults gives a new rule the default scope.
func (r *SeparateRule) SetDefaults() { r.Scope = ScopeHypervisor }

// PlacementRule says which hypervisors the VMs it matches must (or must not)
// run on.
type PlacementRule struct {
	Pos         `yaml:"-"`
	Name        string             `yaml:"name,required"`
	VMs         Selector           `yaml:"vms,required"`
	Hypervisors HypervisorSelector `yaml:"hypervisors,required"`
	Rule        RuleKind           `yaml:"rule,required"`
}

// HypervisorSelector matches hypervisors by labels, cluster or names; every
// given field must match.
type HypervisorSelector struct {
	Labels  map[string]string `yaml:"labels"`
	Cluster string            `yaml:"cluster"`
	Names   []string          `yaml:"names"`
}

// Matches reports whether h has every field the selector gives.
func (s *HypervisorSelector) Matches(h *Hypervisor) bool {
	if s.Cluster != "" && h.Cluster != s.Cluster {
		return false
	}
	if len(s.Names) > 0 {
		found := false
		for _, n := range s.Names {
			if n == h.Name {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for k, v := range s.Labels {
		if got, ok := h.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// DefaultSensitivePorts are the ports of documents.md's default policy.
var defaultSensitivePorts = []int{21, 22, 23, 135, 139, 445, 1433, 1521, 2375, 2376, 3306, 3389, 5432, 5900, 5984, 6379, 9200, 11211, 27017}

// DefaultPolicy returns the policy applied when no Policy document sets a
// field.
func DefaultPolicy() *Policy {
	p := &Policy{
		ExposedHostMinLevel:     LevelStandard,
		DedicatedClassification: ClassRestricted,
		SensitivePorts:          append([]int(nil), defaultSensitivePorts...),
		Overcommit:              Overcommit{CPU: 4.0, Memory: 1.0},
		ResourceLimits:          LimitsShared,
		Change:                  ChangePolicy{BlockAt: SevHigh, CrossZoneMoves: CrossZoneDeny},
		Severity:                map[string]Severity{},
	}
	p.ZoneHardening[ExposurePublic] = LevelHigh
	p.ZoneHardening[ExposurePartner] = LevelStandard
	p.ZoneHardening[ExposureInternal] = LevelLow
	p.ZoneHardening[ExposureRestricted] = LevelLow
	return p
}

// Disabled reports whether the check ID is listed in Disable.
func (p *Policy) Disabled(id string) bool {
	for _, d := range p.Disable {
		if d == id {
			return true
		}
	}
	return false
}
