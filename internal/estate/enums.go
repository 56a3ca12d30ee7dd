package estate

import (
	"fmt"
	"strings"
)

// The enums below are ordered where documents.md gives an order, so that
// comparisons such as "at or above" are plain integer comparisons. The zero
// value of each means "not given"; the loader replaces it with the default.

// enumWords is the vocabulary of one enum, index = value.
type enumWords []string

func (w enumWords) name(v uint8) string {
	if int(v) < len(w) && w[v] != "" {
		return w[v]
	}
	return fmt.Sprintf("unset(%d)", v)
}

func (w enumWords) parse(what string, text []byte) (uint8, error) {
	s := string(text)
	for i, word := range w {
		if i > 0 && word == s {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", what, s, strings.Join(w[1:], ", "))
}

// Exposure says how reachable a zone is: public < partner < internal <
// restricted, from most to least exposed.
type Exposure uint8

const (
	ExposurePublic Exposure = iota + 1
	ExposurePartner
	ExposureInternal
	ExposureRestricted
)

var exposureWords = enumWords{"", "public", "partner", "internal", "restricted"}

func (x Exposure) String() string               { return exposureWords.name(uint8(x)) }
func (x Exposure) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Exposure) UnmarshalText(b []byte) error {
	return parseInto(exposureWords, "exposure", b, (*uint8)(x))
}
func (x Exposure) Valid() bool { return x >= ExposurePublic && x <= ExposureRestricted }

// SecurityLevel says how hardened a guest is: low < standard < high.
type SecurityLevel uint8

const (
	LevelLow SecurityLevel = iota + 1
	LevelStandard
	LevelHigh
)

var levelWords = enumWords{"", "low", "standard", "high"}

func (x SecurityLevel) String() string               { return levelWords.name(uint8(x)) }
func (x SecurityLevel) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *SecurityLevel) UnmarshalText(b []byte) error {
	return parseInto(levelWords, "security level", b, (*uint8)(x))
}

// Classification is a datastore's data class: public < internal <
// confidential < restricted.
type Classification uint8

const (
	ClassPublic Classification = iota + 1
	ClassInternal
	ClassConfidential
	ClassRestricted
)

var classWords = enumWords{"", "public", "internal", "confidential", "restricted"}

func (x Classification) String() string               { return classWords.name(uint8(x)) }
func (x Classification) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Classification) UnmarshalText(b []byte) error {
	return parseInto(classWords, "classification", b, (*uint8)(x))
}

// Severity of a finding: info < low < medium < high < critical.
type Severity uint8

const (
	SevInfo Severity = iota + 1
	SevLow
	SevMedium
	SevHigh
	SevCritical
)

var severityWords = enumWords{"", "info", "low", "medium", "high", "critical"}

func (x Severity) String() string               { return severityWords.name(uint8(x)) }
func (x Severity) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Severity) UnmarshalText(b []byte) error {
	return parseInto(severityWords, "severity", b, (*uint8)(x))
}

// ParseSeverity reads a severity word such as "high".
func ParseSeverity(s string) (Severity, error) {
	var x Severity
	err := x.UnmarshalText([]byte(s))
	return x, err
}

// Severities lists every severity, highest first.
func Severities() []Severity { return []Severity{SevCritical, SevHigh, SevMedium, SevLow, SevInfo} }

// Environment of a VM.
type Environment uint8

const (
	EnvProd Environment = iota + 1
	EnvStaging
	EnvTest
	EnvDev
)

var envWords = enumWords{"", "prod", "staging", "test", "dev"}

func (x Environment) String() string               { return envWords.name(uint8(x)) }
func (x Environment) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Environment) UnmarshalText(b []byte) error {
	return parseInto(envWords, "environment", b, (*uint8)(x))
}

// NetworkPurpose says what traffic a network carries.
type NetworkPurpose uint8

const (
	PurposeGuest NetworkPurpose = iota + 1
	PurposeManagement
	PurposeMigration
	PurposeStorage
)

var purposeWords = enumWords{"", "guest", "management", "migration", "storage"}

func (x NetworkPurpose) String() string               { return purposeWords.name(uint8(x)) }
func (x NetworkPurpose) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *NetworkPurpose) UnmarshalText(b []byte) error {
	return parseInto(purposeWords, "purpose", b, (*uint8)(x))
}

// Writers says whether a datastore tolerates more than one writer.
type Writers uint8

const (
	WritersMulti Writers = iota + 1
	WritersSingle
)

var writersWords = enumWords{"", "multi", "single"}

func (x Writers) String() string               { return writersWords.name(uint8(x)) }
func (x Writers) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Writers) UnmarshalText(b []byte) error {
	return parseInto(writersWords, "writers", b, (*uint8)(x))
}

// Access is what a credential allows.
type Access uint8

const (
	AccessRead Access = iota + 1
	AccessWrite
)

var accessWords = enumWords{"", "read", "write"}

func (x Access) String() string               { return accessWords.name(uint8(x)) }
func (x Access) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Access) UnmarshalText(b []byte) error {
	return parseInto(accessWords, "access", b, (*uint8)(x))
}

// Spread is the failure unit a service is spread over.
type Spread uint8

const (
	SpreadHypervisor Spread = iota + 1
	SpreadFailureDomain
)

var spreadWords = enumWords{"", "hypervisor", "failureDomain"}

func (x Spread) String() string               { return spreadWords.name(uint8(x)) }
func (x Spread) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Spread) UnmarshalText(b []byte) error {
	return parseInto(spreadWords, "spread", b, (*uint8)(x))
}

// Criticality of a service.
type Criticality uint8

const (
	CriticalityStandard Criticality = iota + 1
	CriticalityCritical
)

var criticalityWords = enumWords{"", "standard", "critical"}

func (x Criticality) String() string               { return criticalityWords.name(uint8(x)) }
func (x Criticality) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Criticality) UnmarshalText(b []byte) error {
	return parseInto(criticalityWords, "criticality", b, (*uint8)(x))
}

// Action of a firewall rule or default.
type Action uint8

const (
	ActionAllow Action = iota + 1
	ActionDeny
)

var actionWords = enumWords{"", "allow", "deny"}

func (x Action) String() string               { return actionWords.name(uint8(x)) }
func (x Action) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *Action) UnmarshalText(b []byte) error {
	return parseInto(actionWords, "action", b, (*uint8)(x))
}

// ResourceLimits is the policy on when a VM must be capped (VG304).
type ResourceLimits uint8

const (
	LimitsShared ResourceLimits = iota + 1
	LimitsAlways
	LimitsNever
)

var limitsWords = enumWords{"", "shared", "always", "never"}

func (x ResourceLimits) String() string               { return limitsWords.name(uint8(x)) }
func (x ResourceLimits) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *ResourceLimits) UnmarshalText(b []byte) error {
	return parseInto(limitsWords, "resourceLimits", b, (*uint8)(x))
}

// Scope is the unit a separate rule keeps groups apart on.
type Scope uint8

const (
	ScopeHypervisor Scope = iota + 1
	ScopeFailureDomain
)

var scopeWords = enumWords{"", "hypervisor", "failureDomain"}

func (x Scope) String() string                { return scopeWords.name(uint8(x)) }
func (x Scope) MarshalText() ([]byte, error)  { return []byte(x.String()), nil }
func (x *Scope) UnmarshalText(b []byte) error { return parseInto(scopeWords, "scope", b, (*uint8)(x)) }

// RuleKind of a placement rule.
type RuleKind uint8

const (
	RuleMust RuleKind = iota + 1
	RuleMustNot
)

var ruleWords = enumWords{"", "must", "mustNot"}

func (x RuleKind) String() string                { return ruleWords.name(uint8(x)) }
func (x RuleKind) MarshalText() ([]byte, error)  { return []byte(x.String()), nil }
func (x *RuleKind) UnmarshalText(b []byte) error { return parseInto(ruleWords, "rule", b, (*uint8)(x)) }

// CrossZone is the policy for VG501: deny = high, warn = low, allow = none.
type CrossZone uint8

const (
	CrossZoneDeny CrossZone = iota + 1
	CrossZoneWarn
	CrossZoneAllow
)

var crossZoneWords = enumWords{"", "deny", "warn", "allow"}

func (x CrossZone) String() string               { return crossZoneWords.name(uint8(x)) }
func (x CrossZone) MarshalText() ([]byte, error) { return []byte(x.String()), nil }
func (x *CrossZone) UnmarshalText(b []byte) error {
	return parseInto(crossZoneWords, "crossZoneMoves", b, (*uint8)(x))
}

func parseInto(w enumWords, what string, b []byte, dst *uint8) error {
	v, err := w.parse(what, b)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
