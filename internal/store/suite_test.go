package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/audit"
)

// runSuite is the one contract test every Store must pass. newDB makes a
// fresh, empty database and returns how to open a Store on it; opening
// twice gives two independent instances on one database, as two processes
// or replicas would have.
func runSuite(t *testing.T, newDB func(t *testing.T) func(t *testing.T) Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)

	t.Run("migrations", func(t *testing.T) {
		open := newDB(t)
		a := open(t)
		v, err := a.SchemaVersion(ctx)
		if err != nil || v != len(migrations(dialect{blob: "BLOB"})) {
			t.Fatalf("schema version %d, %v; want %d", v, err, len(migrations(dialect{})))
		}
		// A second opener finds the schema current and changes nothing.
		b := open(t)
		if v2, err := b.SchemaVersion(ctx); err != nil || v2 != v {
			t.Fatalf("second open: version %d, %v", v2, err)
		}
		// A database from a newer vguard is refused.
		if _, err := a.(*sqlStore).db.Exec(a.(*sqlStore).q(`INSERT INTO vguard_schema (version) VALUES (?)`), v+1); err != nil {
			t.Fatal(err)
		}
		if err := a.(*sqlStore).migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("a newer schema: %v", err)
		}
	})

	t.Run("documents", func(t *testing.T) {
		s := newDB(t)(t)
		if _, err := s.Document(ctx, KindEstate, "estate.yaml"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing document: %v", err)
		}
		stamp0, err := s.DocumentsStamp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bin := []byte{0, 1, 2, 0xff, '\n'}
		for _, d := range []Document{
			{Kind: KindEstate, Name: "estate.yaml", Data: []byte("v1"), Updated: t0},
			{Kind: KindScan, Name: "scans/b.json", Data: bin, Updated: t0},
			{Kind: KindScan, Name: "scans/a.json", Data: []byte("{}"), Updated: t0},
			{Kind: KindEstate, Name: "estate.yaml", Data: []byte("v2"), Updated: t0.Add(time.Second)},
		} {
			if err := s.PutDocument(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		d, err := s.Document(ctx, KindEstate, "estate.yaml")
		if err != nil || string(d.Data) != "v2" || !d.Updated.Equal(t0.Add(time.Second)) {
			t.Fatalf("replaced document: %+v, %v", d, err)
		}
		ds, err := s.Documents(ctx, KindScan)
		if err != nil || len(ds) != 2 || ds[0].Name != "scans/a.json" || string(ds[1].Data) != string(bin) {
			t.Fatalf("scans: %+v, %v", ds, err)
		}
		if ds, _ := s.Documents(ctx, KindManifest); len(ds) != 0 {
			t.Fatalf("manifests: %+v", ds)
		}
		// The stamp moves with every put, and only then.
		stamp1, _ := s.DocumentsStamp(ctx)
		stamp1b, _ := s.DocumentsStamp(ctx)
		if stamp1 == stamp0 || stamp1 != stamp1b {
			t.Fatalf("stamps %s %s %s", stamp0, stamp1, stamp1b)
		}
		if err := s.PutDocument(ctx, Document{Kind: KindEstate, Name: "estate.yaml", Data: []byte("v3"), Updated: t0.Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if stamp2, _ := s.DocumentsStamp(ctx); stamp2 == stamp1 {
			t.Fatal("a replaced document left the stamp alone")
		}
	})

	t.Run("findings", func(t *testing.T) {
		s := newDB(t)(t)
		f := func(key, sev string) Finding {
			check, subject, _ := strings.Cut(key, "|")
			return Finding{Key: key, Check: check, Severity: sev, Pillar: "availability", Subject: subject, JSON: []byte(`{"k":"` + key + `"}`)}
		}
		t1, t2, t3 := t0, t0.Add(time.Hour), t0.Add(2*time.Hour)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.RecordFindings(ctx, t1, []Finding{f("VG301|service/a", "high"), f("VG401|vm/x", "medium")}))
		must(s.RecordFindings(ctx, t2, []Finding{f("VG301|service/a", "critical"), f("VG101|vm/y", "high")}))
		all, err := s.Findings(ctx, FindingFilter{State: "all"})
		must(err)
		want := map[string][4]any{ // first, last, resolved, severity
			"VG101|vm/y":      {t2, t2, time.Time{}, "high"},
			"VG301|service/a": {t1, t2, time.Time{}, "critical"},
			"VG401|vm/x":      {t1, t1, t2, "medium"},
		}
		if len(all) != len(want) {
			t.Fatalf("findings: %+v", all)
		}
		for _, x := range all {
			w := want[x.Key]
			if !x.FirstSeen.Equal(w[0].(time.Time)) || !x.LastSeen.Equal(w[1].(time.Time)) || !x.Resolved.Equal(w[2].(time.Time)) || x.Severity != w[3] {
				t.Errorf("%s: first %v last %v resolved %v %s; want %v", x.Key, x.FirstSeen, x.LastSeen, x.Resolved, x.Severity, w)
			}
			if string(x.JSON) != `{"k":"`+x.Key+`"}` {
				t.Errorf("%s: JSON %s", x.Key, x.JSON)
			}
		}
		open, err := s.Findings(ctx, FindingFilter{})
		must(err)
		if len(open) != 2 || open[0].Key != "VG101|vm/y" {
			t.Fatalf("open: %+v", open)
		}
		resolved, err := s.Findings(ctx, FindingFilter{State: "resolved"})
		must(err)
		if len(resolved) != 1 || resolved[0].Key != "VG401|vm/x" {
			t.Fatalf("resolved: %+v", resolved)
		}
		// It comes back: reopened, first seen kept.
		must(s.RecordFindings(ctx, t3, []Finding{f("VG401|vm/x", "medium")}))
		got, err := s.Findings(ctx, FindingFilter{Check: "VG401"})
		must(err)
		if len(got) != 1 || !got[0].FirstSeen.Equal(t1) || !got[0].LastSeen.Equal(t3) || !got[0].Resolved.IsZero() {
			t.Fatalf("reopened: %+v", got)
		}
		for _, c := range []struct {
			f    FindingFilter
			want int
		}{
			{FindingFilter{State: "all", Severity: "critical"}, 1},
			{FindingFilter{State: "all", Subject: "vm/y"}, 1},
			{FindingFilter{State: "all", Pillar: "availability", Check: "VG101"}, 1},
			{FindingFilter{State: "all", Pillar: "integrity"}, 0},
			{FindingFilter{State: "resolved"}, 2},
		} {
			got, err := s.Findings(ctx, c.f)
			if err != nil || len(got) != c.want {
				t.Errorf("%+v: %d findings, %v; want %d", c.f, len(got), err, c.want)
			}
		}
		if _, err := s.Findings(ctx, FindingFilter{State: "bogus"}); err == nil {
			t.Error("a bad state is accepted")
		}
	})

	t.Run("tokens", func(t *testing.T) {
		s := newDB(t)(t)
		a := Token{ID: "a1", Name: "ci", Role: "operator", Hash: strings.Repeat("a", 64), Created: t0}
		b := Token{ID: "b2", Name: "alice", Role: "admin", Hash: strings.Repeat("b", 64), Created: t0.Add(time.Second)}
		for _, tok := range []Token{b, a} {
			if err := s.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateToken(ctx, Token{ID: "c3", Hash: a.Hash, Created: t0}); err == nil {
			t.Error("a duplicate hash is accepted")
		}
		if err := s.CreateToken(ctx, Token{ID: "a1", Hash: strings.Repeat("c", 64), Created: t0}); err == nil {
			t.Error("a duplicate ID is accepted")
		}
		got, err := s.TokenByHash(ctx, a.Hash)
		if err != nil || got != a {
			t.Fatalf("by hash: %+v, %v", got, err)
		}
		if _, err := s.TokenByHash(ctx, strings.Repeat("d", 64)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if err := s.RevokeToken(ctx, "a1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, a.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoked token still valid: %v", err)
		}
		if err := s.RevokeToken(ctx, "a1", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		if err := s.RevokeToken(ctx, "zz", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoking an unknown token: %v", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "a1" || !list[0].Revoked.Equal(t0.Add(time.Minute)) || !list[1].Revoked.IsZero() {
			t.Fatalf("tokens: %+v, %v", list, err)
		}
	})

	t.Run("audit", func(t *testing.T) {
		open := newDB(t)
		s1, s2 := open(t), open(t)
		// Two logs on two instances append concurrently, as two
		// processes or replicas would: the chain must stay one chain.
		l1, l2 := audit.NewLog(s1), audit.NewLog(s2)
		const n = 200
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := l1
				if i%2 == 1 {
					l = l2
				}
				if _, err := l.Append(ctx, audit.Entry{Kind: audit.KindJudge, Actor: "ci", Subject: fmt.Sprintf("chg-%d", i),
					Data: map[string]any{"decision": "allow", "i": i, "note": "<&> ünï\u2028"}}); err != nil {
					t.Error(err)
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		l1.Close()
		l2.Close()
		if failed.Load() > 0 {
			t.FailNow()
		}
		n2, err := audit.Verify(ctx, s1)
		if err != nil || n2 != n {
			t.Fatalf("verify: %d records, %v", n2, err)
		}
		recs, err := s2.AuditRecords(ctx, 10, 5)
		if err != nil || len(recs) != 5 || recs[0].Seq != 11 || recs[0].Prev == "" {
			t.Fatalf("records after 10: %+v, %v", recs, err)
		}
		db := s1.(*sqlStore)
		// Edit one record's actor directly in the database.
		if _, err := db.db.Exec(db.q(`UPDATE audit SET actor = ? WHERE seq = ?`), "mallory", 57); err != nil {
			t.Fatal(err)
		}
		_, err = audit.Verify(ctx, s1)
		var p *audit.Problem
		if !errors.As(err, &p) || p.Seq != 57 || !strings.Contains(p.Reason, "edited") {
			t.Fatalf("an edited record: %v", err)
		}
		if _, err := db.db.Exec(db.q(`UPDATE audit SET actor = ? WHERE seq = ?`), recs[0].Actor, 57); err != nil {
			t.Fatal(err)
		}
		// Delete one: the next is named.
		if _, err := db.db.Exec(db.q(`DELETE FROM audit WHERE seq = ?`), 120); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Verify(ctx, s1); !errors.As(err, &p) || p.Seq != 120 || !strings.Contains(p.Reason, "missing") {
			t.Fatalf("a deleted record: %v", err)
		}
	})

	// A NUL in a change's or token's name once failed the whole group
	// commit on PostgreSQL (TEXT cannot hold it): every store takes such
	// records, with the control characters replaced, and a record the
	// database does refuse fails only its own Append, not its batch.
	t.Run("audit control characters", func(t *testing.T) {
		s := newDB(t)(t)
		rec, err := audit.NewRecord(audit.Entry{Kind: audit.KindTokenCreate, Actor: "adm\x00in", Subject: "t\x00\x1b[1m",
			Data: map[string]any{"name": "a\x00b"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, Change{Audit: []audit.Record{rec}}); err != nil {
			t.Fatalf("apply with a NUL in the record: %v", err)
		}
		// Refused by the database itself: a record that takes a place
		// in the chain that is taken (seq 1).
		poisoned := poisonAppender{s}
		l := audit.NewLog(poisoned)
		const n = 200
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failedGood []error
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := audit.Entry{Kind: audit.KindJudge, Actor: "op\x00", Subject: fmt.Sprintf("CHG\x00%d", i), Data: map[string]any{"i": i}}
				if i%2 == 1 {
					e.Subject = "poison"
				}
				_, err := l.Append(ctx, e)
				if (err == nil) == (i%2 == 1) {
					mu.Lock()
					failedGood = append(failedGood, fmt.Errorf("append %d (%q): %v", i, e.Subject, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		l.Close()
		if len(failedGood) > 0 {
			t.Fatalf("%d appends went wrong, the first: %v", len(failedGood), failedGood[0])
		}
		if got, err := audit.Verify(ctx, s); err != nil || got != 1+n/2 {
			t.Fatalf("verify: %d records, %v; want %d", got, err, 1+n/2)
		}
		recs, err := s.AuditRecords(ctx, 0, 2)
		if err != nil || len(recs) != 2 {
			t.Fatal(recs, err)
		}
		if recs[0].Actor != "adm\uFFFDin" || recs[0].Subject != "t\uFFFD\uFFFD[1m" || string(recs[0].Data) != `{"name":"a\u0000b"}` ||
			recs[1].Actor != "op\uFFFD" || !strings.HasPrefix(recs[1].Subject, "CHG\uFFFD") {
			t.Fatalf("stored records: %+v", recs)
		}
	})

	t.Run("lease", func(t *testing.T) {
		open := newDB(t)
		a, b := open(t), open(t)
		ttl := 10 * time.Second
		try := func(s Store, holder string, at time.Time, want bool) {
			t.Helper()
			got, err := s.AcquireLease(ctx, "connectors", holder, at, ttl)
			if err != nil || got != want {
				t.Fatalf("%s at %v: %v, %v; want %v", holder, at.Sub(t0), got, err, want)
			}
		}
		try(a, "replica-a", t0, true)
		try(b, "replica-b", t0.Add(time.Second), false)
		try(a, "replica-a", t0.Add(5*time.Second), true) // renewed until t0+15s
		try(b, "replica-b", t0.Add(12*time.Second), false)
		try(b, "replica-b", t0.Add(16*time.Second), true) // a's expired
		try(a, "replica-a", t0.Add(17*time.Second), false)
		if err := a.ReleaseLease(ctx, "connectors", "replica-a"); err != nil { // not a's: no effect
			t.Fatal(err)
		}
		try(a, "replica-a", t0.Add(18*time.Second), false)
		if err := b.ReleaseLease(ctx, "connectors", "replica-b"); err != nil {
			t.Fatal(err)
		}
		try(a, "replica-a", t0.Add(19*time.Second), true)
		// Many contenders on both instances race for an expired lease:
		// exactly one wins.
		at := t0.Add(time.Hour)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := a
				if i%2 == 1 {
					s = b
				}
				ok, err := s.AcquireLease(ctx, "connectors", fmt.Sprintf("r%d", i), at, ttl)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d contenders won the lease", wins.Load())
		}
	})
	t.Run("apply", func(t *testing.T) {
		open := newDB(t)
		a, b := open(t), open(t)
		rec := func(kind string) audit.Record {
			r, err := audit.NewRecord(audit.Entry{Kind: kind, Actor: "test", Data: map[string]any{"n": 1}}, t0)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		count := func() int {
			recs, err := a.AuditRecords(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			return len(recs)
		}
		stamp, err := a.DocumentsStamp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok := Token{ID: "t1", Name: "ci", Role: "viewer", Hash: strings.Repeat("a", 64), Created: t0}
		got, err := a.Apply(ctx, Change{IfStamp: stamp,
			Put:         []Document{{Kind: KindEstate, Name: "connectors/vc/a.yaml", Data: []byte("a"), Updated: t0}, {Kind: KindEstate, Name: "connectors/vc/b.yaml", Data: []byte("b"), Updated: t0}},
			Findings:    &FindingsAt{At: t0, Current: []Finding{{Key: "k1", Check: "VG101", Severity: "high", Pillar: "confidentiality", Subject: "vm/a", JSON: []byte("{}")}}},
			CreateToken: &tok, Audit: []audit.Record{rec("estate.update"), rec("token.create")}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Audit) != 2 || got.Audit[0].Seq != 1 || got.Audit[1].Seq != 2 || got.Audit[1].Prev != got.Audit[0].Hash {
			t.Fatalf("sealed records %+v", got.Audit)
		}
		if now, _ := b.DocumentsStamp(ctx); now != got.Stamp || now == stamp {
			t.Fatalf("stamp after apply %q, store says %q (before %q)", got.Stamp, now, stamp)
		}
		if _, err := b.TokenByHash(ctx, tok.Hash); err != nil {
			t.Fatal(err)
		}
		if fs, _ := b.Findings(ctx, FindingFilter{}); len(fs) != 1 {
			t.Fatalf("findings %+v", fs)
		}
		if n, err := audit.Verify(ctx, b); err != nil || n != 2 {
			t.Fatalf("verify: %d %v", n, err)
		}
		// A stale stamp: nothing at all happens.
		if _, err := b.Apply(ctx, Change{IfStamp: stamp, Put: []Document{{Kind: KindEstate, Name: "x.yaml", Data: []byte("x"), Updated: t0}},
			Audit: []audit.Record{rec("estate.update")}}); !errors.Is(err, ErrStale) {
			t.Fatalf("stale stamp: %v", err)
		}
		if _, err := a.Document(ctx, KindEstate, "x.yaml"); !errors.Is(err, ErrNotFound) || count() != 2 {
			t.Fatalf("a stale change took effect: %v, %d records", err, count())
		}
		// A revoke of an unknown token, or a record that cannot be sealed:
		// the transaction is rolled back whole, record and all.
		if _, err := a.Apply(ctx, Change{RevokeToken: "nope", RevokedAt: t0, Audit: []audit.Record{rec("token.revoke")}}); !errors.Is(err, ErrNotFound) || count() != 2 {
			t.Fatalf("unknown token: %v, %d records", err, count())
		}
		bad := rec("token.create")
		bad.Data = []byte("{not json")
		tok2 := Token{ID: "t2", Name: "x", Role: "admin", Hash: strings.Repeat("b", 64), Created: t0}
		if _, err := a.Apply(ctx, Change{CreateToken: &tok2, Audit: []audit.Record{bad}}); err == nil {
			t.Fatal("an unsealable record was accepted")
		}
		if _, err := a.TokenByHash(ctx, tok2.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the token exists without its audit record: %v", err)
		}
		// Fencing: only the lease's holder may apply under it.
		if ok, err := a.AcquireLease(ctx, "connectors", "replica-a", time.Now(), time.Minute); err != nil || !ok {
			t.Fatal(ok, err)
		}
		replace := &Prefix{Kind: KindEstate, Prefix: "connectors/vc/"}
		put := []Document{{Kind: KindEstate, Name: "connectors/vc/a.yaml", Data: []byte("a2"), Updated: t0}}
		if _, err := b.Apply(ctx, Change{Lease: &LeaseHold{Name: "connectors", Holder: "replica-b"}, Replace: replace, Put: put}); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("apply by a replica without the lease: %v", err)
		}
		if _, err := b.Apply(ctx, Change{Lease: &LeaseHold{Name: "connectors", Holder: "replica-a"}, Replace: replace, Put: put}); err != nil {
			t.Fatal(err)
		}
		// Replace removed what the connector no longer returns, only under
		// its prefix.
		docs, _ := a.Documents(ctx, KindEstate)
		if len(docs) != 1 || docs[0].Name != "connectors/vc/a.yaml" || string(docs[0].Data) != "a2" {
			t.Fatalf("after replace: %+v", docs)
		}
		// Compare-and-swap from two instances at once: every increment
		// lands exactly once.
		const per = 8
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := []Store{a, b}[i%2]
				for range per {
					for {
						st, err := s.DocumentsStamp(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						n := 0
						if d, err := s.Document(ctx, KindPolicy, "n"); err == nil {
							n, _ = strconv.Atoi(string(d.Data))
						}
						_, err = s.Apply(ctx, Change{IfStamp: st, Put: []Document{{Kind: KindPolicy, Name: "n", Data: []byte(strconv.Itoa(n + 1)), Updated: time.Now()}}})
						if errors.Is(err, ErrStale) {
							continue
						}
						if err != nil {
							t.Error(err)
						}
						break
					}
				}
			}()
		}
		wg.Wait()
		if d, err := a.Document(ctx, KindPolicy, "n"); err != nil || string(d.Data) != strconv.Itoa(4*per) {
			t.Fatalf("counter %q %v; want %d", d.Data, err, 4*per)
		}
	})
}

// poisonAppender is a store whose transactions that hold a record with
// the subject "poison" the database refuses: the record is given seq 1,
// which is taken.
type poisonAppender struct{ Store }

func (p poisonAppender) AppendAudit(ctx context.Context, build func(audit.Head) ([]audit.Record, error)) error {
	return p.Store.AppendAudit(ctx, func(h audit.Head) ([]audit.Record, error) {
		recs, err := build(h)
		for i := range recs {
			if recs[i].Subject == "poison" {
				recs[i].Seq = 1
			}
		}
		return recs, err
	})
}
