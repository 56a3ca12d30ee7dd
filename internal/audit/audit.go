// Package audit keeps vguard serve's tamper-evident trail: every judged
// change, estate or policy update, sync and token created or revoked is an
// append-only Record that holds the hash of the record before it, so that
// editing, deleting or reordering any record breaks the chain from there on.
//
// The canonical encoding that is hashed (SHA-256, lower-case hex) is one
// JSON object with exactly these members in this order and no white space:
//
//	{"seq":N,"time":"T","kind":"K","actor":"A","subject":"S","data":D,"prev":"P"}
//
// N is the decimal sequence number (1 for the first record), T the time in
// RFC 3339 with nanoseconds in UTC, strings are escaped as Go's encoding/json
// does without HTML escaping (package jsonstr), D is a JSON object in
// canonical form (members sorted by key bytewise, no white space, numbers as
// written) and P the previous record's hash (64 zeros for the first record).
// Anyone can recompute the chain from an export (`vguard audit export`)
// with a JSON library and SHA-256.
//
// Kind, actor and subject come from clients (a change's name, a token's
// name), so Seal stores them as valid UTF-8 without control characters:
// anything else becomes U+FFFD. A NUL would make PostgreSQL refuse the
// record, and other control characters could forge lines in a terminal or
// a log that shows them.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vguard-dev/vguard/internal/jsonstr"
)

// Genesis is the prev of the first record.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// TimeFormat is the layout of Record.Time.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Kinds of records.
const (
	KindJudge       = "change.judge"
	KindEstate      = "estate.update"
	KindPolicy      = "policy.update"
	KindFile        = "file.upload" // a scan report or manifest
	KindSync        = "sync"
	KindTokenCreate = "token.create"
	KindTokenRevoke = "token.revoke"
)

// Record is one entry of the chain, exactly as stored and exported.
type Record struct {
	Seq     int64           `json:"seq"`
	Time    string          `json:"time"`
	Kind    string          `json:"kind"`
	Actor   string          `json:"actor"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
	Prev    string          `json:"prev"`
	Hash    string          `json:"hash"`
}

// Entry is what a caller appends; the Log gives it a place in the chain.
type Entry struct {
	Kind    string
	Actor   string // who: a token's name, or "cli" for local commands
	Subject string // what: a change's name, a token's id, a document
	Data    any    // details, encoded as a JSON object
}

// Canonical returns the bytes of r that are hashed.
func (r *Record) Canonical() []byte {
	b := make([]byte, 0, 128+len(r.Data))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	b = jsonstr.Append(b, r.Time)
	b = append(b, `,"kind":`...)
	b = jsonstr.Append(b, r.Kind)
	b = append(b, `,"actor":`...)
	b = jsonstr.Append(b, r.Actor)
	b = append(b, `,"subject":`...)
	b = jsonstr.Append(b, r.Subject)
	b = append(b, `,"data":`...)
	b = append(b, r.Data...)
	b = append(b, `,"prev":`...)
	b = jsonstr.Append(b, r.Prev)
	return append(b, '}')
}

// ComputeHash returns the hash r should carry.
func (r *Record) ComputeHash() string {
	sum := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(sum[:])
}

// CanonicalJSON returns the canonical form of the JSON object data: members
// sorted by key, no white space, numbers as written. Anything but an object
// is an error.
func CanonicalJSON(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit data: %w", err)
	}
	if len(bytes.Trim(data[dec.InputOffset():], " \t\r\n")) > 0 { // JSON white space only
		return nil, errors.New("audit data: more than one JSON value")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("audit data: not a JSON object")
	}
	return appendCanonical(nil, v), nil
}

func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case string:
		return jsonstr.Append(b, v)
	case json.Number:
		return append(b, v...)
	case bool:
		return strconv.AppendBool(b, v)
	default: // nil
		return append(b, "null"...)
	}
}

// Head is the last record of a chain: its sequence number and hash (0 and
// Genesis for an empty chain).
type Head struct {
	Seq  int64
	Hash string
}

// Appender stores records at the end of the chain. AppendAudit calls build
// exactly once, with the chain's head read inside a transaction that holds
// the chain's write lock, and stores the records build returns (which must
// continue from that head) in the same transaction: when AppendAudit returns
// nil they are durable, and no other writer (another process or replica)
// can have appended in between. build may return no records: the Log does
// that to read the head after a failed commit.
type Appender interface {
	AppendAudit(ctx context.Context, build func(head Head) ([]Record, error)) error
}

// Reader reads the chain in order.
type Reader interface {
	// AuditRecords returns up to limit records with Seq > after, in Seq
	// order.
	AuditRecords(ctx context.Context, after int64, limit int) ([]Record, error)
}

// Seal fills in r.Seq, r.Prev and r.Hash after head, canonicalizing r.Data,
// and returns the new head.
func Seal(r *Record, head Head) (Head, error) {
	if len(r.Data) == 0 {
		r.Data = json.RawMessage("{}")
	}
	data, err := CanonicalJSON(r.Data)
	if err != nil {
		return head, err
	}
	r.Data = data
	r.Actor = clean(r.Actor)
	r.Subject = clean(r.Subject)
	r.Kind = clean(r.Kind)
	r.Seq = head.Seq + 1
	r.Prev = head.Hash
	r.Hash = r.ComputeHash()
	return Head{Seq: r.Seq, Hash: r.Hash}, nil
}

// clean returns s as valid UTF-8 with every control character (C0, DEL,
// C1) replaced by U+FFFD.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// NewRecord makes the unsealed record of e at time t.
func NewRecord(e Entry, t time.Time) (Record, error) {
	data := e.Data
	if data == nil {
		data = struct{}{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Record{}, fmt.Errorf("audit: encoding the details of %s: %w", e.Kind, err)
	}
	return Record{Time: t.UTC().Format(TimeFormat), Kind: e.Kind, Actor: e.Actor, Subject: e.Subject, Data: raw}, nil
}
