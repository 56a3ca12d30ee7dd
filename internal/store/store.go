// Package store keeps what vguard serve must remember across restarts and
// share between replicas: the uploaded documents (estate, policy, scan
// reports, manifests), the history of findings, API tokens (as hashes),
// the audit chain and the connector lease. Store is the one contract; SQLite
// (the default, embedded, nothing to set up) and PostgreSQL (for several
// replicas) implement it, and one test suite (storetest_test.go) runs
// against both.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
)

// ErrNotFound is returned when a named document or token does not exist.
var ErrNotFound = errors.New("not found")

// ErrStale is returned by Apply when Change.IfStamp is no longer the
// documents' stamp: another process or replica put documents since the
// change was validated. Validate again and retry.
var ErrStale = errors.New("the stored documents changed since they were read")

// ErrLeaseLost is returned by Apply when Change.Lease is not held by its
// holder any more (fencing: a replica that lost the connector lease must
// not write what its connector returned).
var ErrLeaseLost = errors.New("the lease is no longer held")

// Document kinds.
const (
	KindEstate   = "estate"
	KindPolicy   = "policy"
	KindScan     = "scan"
	KindManifest = "manifest"
)

// Document is one uploaded input, kept as the bytes that were sent.
type Document struct {
	Kind    string
	Name    string // the file name it is loaded as (estate.yaml, scans/x.json)
	Data    []byte
	Updated time.Time
}

// Finding is one finding's history. Key identifies it across evaluations
// (check.Finding.Key); JSON is the finding as the reports write it.
type Finding struct {
	Key       string
	Check     string
	Severity  string
	Pillar    string
	Subject   string
	JSON      []byte
	FirstSeen time.Time
	LastSeen  time.Time
	// Resolved is when it was last found gone; zero while open.
	Resolved time.Time
}

// FindingFilter selects findings; empty fields select everything.
type FindingFilter struct {
	Check, Severity, Pillar, Subject string
	// State is "open" (the default), "resolved" or "all".
	State string
}

// Token is an API token as stored: never the secret, only its hash.
type Token struct {
	ID      string // public, short, names the token in lists and the audit trail
	Name    string // who or what holds it
	Role    string // viewer, operator or admin
	Hash    string // hex SHA-256 of the secret
	Created time.Time
	Revoked time.Time // zero while valid
}

// Change is one change to the estate or the tokens together with its
// audit records. Apply makes all of it durable in one transaction, or none
// of it: an audited event never takes effect without its record, and its
// record never exists without the event.
type Change struct {
	// IfStamp, when set, makes Apply fail with ErrStale unless the
	// documents' stamp (DocumentsStamp) is still this: the change was
	// validated against those documents (compare-and-swap).
	IfStamp string
	// Lease, when set, makes Apply fail with ErrLeaseLost unless
	// Lease.Holder holds the lease Lease.Name, unexpired, at commit.
	Lease *LeaseHold
	// Put stores documents, as PutDocument does.
	Put []Document
	// Replace, when set, also deletes the documents of Replace.Kind whose
	// names start with Replace.Prefix and are not in Put.
	Replace *Prefix
	// Findings, when set, are recorded as RecordFindings does.
	Findings *FindingsAt
	// CreateToken stores a token, as CreateToken does.
	CreateToken *Token
	// RevokeToken revokes the token of that ID at RevokedAt; ErrNotFound
	// when there is no unrevoked token with that ID.
	RevokeToken string
	RevokedAt   time.Time
	// Audit are records made by audit.NewRecord; Apply seals them onto
	// the chain's head.
	Audit []audit.Record
}

// LeaseHold names a lease and its expected holder.
type LeaseHold struct{ Name, Holder string }

// Prefix names documents of one kind whose names start with Prefix.
type Prefix struct{ Kind, Prefix string }

// FindingsAt are the findings current at At.
type FindingsAt struct {
	At      time.Time
	Current []Finding
}

// Applied is what Apply did.
type Applied struct {
	// Audit are the records as sealed on the chain.
	Audit []audit.Record
	// Stamp is the documents' stamp right after the change.
	Stamp string
}

// Store is vguard serve's durable state. Every method is safe for
// concurrent use, from several goroutines and from several processes (or,
// for PostgreSQL, replicas) sharing one database. Every write is durable
// when the method returns nil. Times are stored to the nanosecond and come
// back in UTC.
type Store interface {
	// PutDocument stores doc, replacing the document of the same kind and
	// name.
	PutDocument(ctx context.Context, doc Document) error
	// Document returns the document of that kind and name, or ErrNotFound.
	Document(ctx context.Context, kind, name string) (Document, error)
	// Documents returns every document of kind, sorted by name.
	Documents(ctx context.Context, kind string) ([]Document, error)
	// DocumentsStamp returns a value that changes whenever any document
	// is put (from every document's kind, name, time and size, without
	// reading the data): replicas poll it to notice each other's uploads.
	DocumentsStamp(ctx context.Context) (string, error)

	// RecordFindings makes current the open findings as of at, in one
	// transaction: a finding not open before is opened with FirstSeen at
	// (a resolved one that returns keeps its FirstSeen and is reopened),
	// every current one gets LastSeen at, and every open one not in current
	// gets Resolved at. Keys in current are distinct.
	RecordFindings(ctx context.Context, at time.Time, current []Finding) error
	// Findings returns the findings f selects, sorted by key.
	Findings(ctx context.Context, f FindingFilter) ([]Finding, error)

	// CreateToken stores t; its ID and Hash must be new.
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the unrevoked token with that hash, or
	// ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// RevokeToken marks the token revoked at at; ErrNotFound when there is
	// no unrevoked token with that ID.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// Tokens lists every token, revoked ones included, by creation time.
	Tokens(ctx context.Context) ([]Token, error)

	// The audit chain: see audit.Appender and audit.Reader for the
	// contract. AppendAudit serializes appends across processes.
	audit.Appender
	audit.Reader

	// AcquireLease takes or renews the lease called name for holder until
	// now+ttl, and reports whether holder has it: true when no one held it,
	// holder held it already, or the other holder's lease had expired.
	// Connectors run only while their replica holds the lease; holders
	// must renew well within ttl, and replicas' clocks must agree to well
	// within ttl.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error

	// Apply makes c durable in one transaction, serialized with every
	// other Apply and audit append across processes and replicas.
	Apply(ctx context.Context, c Change) (Applied, error)

	// SchemaVersion is the number of migrations applied.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the connections.
	Close() error
}
