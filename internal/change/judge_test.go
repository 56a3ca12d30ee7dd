package change

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

func node(t testing.TB, yamlText string) *syntax.Node {
	t.Helper()
	docs, err := syntax.ParseYAML([]byte(yamlText))
	if err != nil || len(docs) != 1 {
		t.Fatalf("bad test YAML %q: %v", yamlText, err)
	}
	return docs[0]
}

// randomChange makes a change of 1–3 random operations of every kind.
func randomChange(t testing.TB, r *rand.Rand, e *estate.Estate, serial int) *Change {
	c := &Change{File: "change.yaml"}
	pick := func() *estate.VM { return e.VMs[r.IntN(len(e.VMs))] }
	used := map[string]bool{}
	for k := 1 + r.IntN(3); k > 0; k-- {
		vm := pick()
		if used[vm.Name] {
			continue
		}
		used[vm.Name] = true
		op := &Operation{Index: len(c.Operations), VM: vm.Name}
		op.Line = 10 + op.Index
		net := e.Networks[r.IntN(len(e.Networks))].Name
		switch r.IntN(9) {
		case 0:
			op.Op, op.ToHypervisor = OpMigrate, e.Hypervisors[r.IntN(len(e.Hypervisors))].Name
		case 1:
			op.Op, op.Network, op.Ports = OpAttachNIC, net, []estate.PortRange{{Lo: 22, Hi: 22}}
		case 2:
			if len(vm.NICs) == 0 {
				continue
			}
			op.Op, op.Network = OpDetachNIC, vm.NICs[0].Network
		case 3:
			if len(vm.NICs) == 0 {
				continue
			}
			op.Op, op.FromNetwork, op.ToNetwork = OpMoveNIC, vm.NICs[0].Network, net
		case 4:
			op.Op, op.Name, op.Sanitize = OpClone, fmt.Sprintf("%s-clone-%d", vm.Name, serial), r.IntN(2) == 0
			if r.IntN(2) == 0 {
				other := pick()
				op.Set = node(t, fmt.Sprintf("{owner: %q, app: %q}", other.Owner, other.App))
			}
		case 5:
			op.Op = OpCreate
			op.Spec = node(t, fmt.Sprintf("{name: new-%d-%d, hypervisor: %s, owner: %q, app: %q, securityLevel: low, nics: [{network: %s, ports: [3306]}]}",
				serial, op.Index, e.Hypervisors[r.IntN(len(e.Hypervisors))].Name, vm.Owner, vm.App, net))
		case 6:
			op.Op = OpDelete
		case 7:
			op.Op = OpUpdate
			other := pick()
			sets := []string{
				fmt.Sprintf("{securityLevel: %s}", []string{"low", "standard", "high"}[r.IntN(3)]),
				fmt.Sprintf("{owner: %q, app: %q}", other.Owner, other.App),
				"{resources: {cpus: 64, limited: false}}",
				fmt.Sprintf("{hypervisor: %s}", other.Hypervisor),
				"{gateway: true}",
			}
			if other.Identity.UUID != "" {
				sets = append(sets, fmt.Sprintf("{identity: {uuid: %q}}", other.Identity.UUID))
			}
			if len(other.Credentials) > 0 {
				sets = append(sets, fmt.Sprintf("{credentials: [{datastore: %s, access: write}]}", other.Credentials[0].Datastore))
			}
			if other.Image != nil {
				sets = append(sets, fmt.Sprintf("{image: %s}", other.Image))
			}
			op.Set = node(t, sets[r.IntN(len(sets))])
		case 8:
			var masters []*estate.Image
			for _, im := range e.Images {
				if im.Master {
					masters = append(masters, im)
				}
			}
			if len(masters) == 0 {
				continue
			}
			m := masters[r.IntN(len(masters))]
			op.Op, op.VM = OpAddImage, ""
			op.Spec = node(t, fmt.Sprintf("{name: %s, version: %d, master: true}", m.Name, 1000+10*serial+op.Index))
		}
		c.Operations = append(c.Operations, op)
	}
	if len(c.Operations) == 0 {
		return randomChange(t, r, e, serial)
	}
	return c
}

// fullVerdict judges c the slow, obvious way: build the estate after the
// change from scratch and evaluate every check on both.
func fullVerdict(t testing.TB, e *estate.Estate, p *estate.Policy, c *Change, files check.SideFiles) (intro, gone, worse []string) {
	x := estate.NewIndex(e)
	x.EnableUpdates()
	a, errs := apply(x, c, nil)
	if errs != nil {
		t.Fatalf("reference apply: %v", errs)
	}
	j := &Judge{x: x, p: p}
	changeOnly := j.changeFindings(a)
	after := *e
	after.VMs = nil
	for _, vm := range e.VMs {
		if _, touched := a.after[vm.Name]; !touched {
			after.VMs = append(after.VMs, vm)
		}
	}
	for _, name := range a.names {
		if v := a.after[name]; v != nil {
			after.VMs = append(after.VMs, v)
		}
	}
	after.Images = append(slices.Clone(e.Images), a.images...)
	before := check.Evaluate(estate.NewIndex(e), p, check.Options{Files: files}).Findings
	afterF := check.Evaluate(estate.NewIndex(&after), p, check.Options{Files: files}).Findings
	sev := map[string]estate.Severity{}
	for _, f := range before {
		sev[f.Key()] = f.Severity
	}
	var worsened []check.Finding
	for _, f := range afterF {
		if s, ok := sev[f.Key()]; ok && f.Severity > s {
			worsened = append(worsened, f)
		}
	}
	return lines(append(keyDiff(afterF, before), changeOnly...)), lines(keyDiff(before, afterF)), lines(worsened)
}

func lines(fs []check.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Key()+" "+f.Severity.String()+" "+f.Message)
	}
	slices.Sort(out)
	return out
}

// TestJudgeMatchesFull is the proof that the fast path is right: for random
// estates and random changes, the incremental verdict equals the one from
// evaluating every check on the whole estate before and after.
func TestJudgeMatchesFull(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	worseSeen := 0
	for seed := int64(1); seed <= 5; seed++ {
		e, p := gen.Estate(gen.Options{VMs: 200 + int(seed)*150, Hypervisors: 10 + int(seed)*2, Seed: seed})
		x := estate.NewIndex(e)
		j, err := NewJudge(x, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		for round := 0; round < rounds; round++ {
			c := randomChange(t, r, e, round)
			if round%4 == 3 {
				// Lower a VM that has a finding below critical to low
				// hardening: the way a change makes a finding worse.
				for i := range j.before {
					f := &j.before[i]
					if f.Severity < estate.SevCritical && strings.HasPrefix(f.Subject, "vm/") && r.IntN(4) == 0 {
						c = mustParse(t, fmt.Sprintf("apiVersion: vguard.dev/v1\nkind: Change\noperations:\n  - {op: update, vm: %s, set: {securityLevel: low}}\n",
							strings.TrimPrefix(f.Subject, "vm/")))
						break
					}
				}
			}
			v, err := j.Judge(c)
			if err != nil {
				t.Fatalf("seed %d round %d: %v", seed, round, err)
			}
			wantIntro, wantGone, wantWorse := fullVerdict(t, e, p, c, nil)
			gotIntro, gotGone := lines(v.Introduced), lines(v.Resolved)
			worseSeen += len(wantWorse)
			if got := lines(v.Worsened); !slices.Equal(got, wantWorse) {
				t.Fatalf("seed %d round %d: worsened: got\n  %s\nwant\n  %s", seed, round, strings.Join(got, "\n  "), strings.Join(wantWorse, "\n  "))
			}
			if !slices.Equal(gotIntro, wantIntro) || !slices.Equal(gotGone, wantGone) {
				var ops []string
				for _, op := range c.Operations {
					ops = append(ops, op.String())
				}
				t.Fatalf("seed %d round %d: %s\nintroduced: got\n  %s\nwant\n  %s\nresolved: got\n  %s\nwant\n  %s",
					seed, round, strings.Join(ops, "; "),
					strings.Join(gotIntro, "\n  "), strings.Join(wantIntro, "\n  "),
					strings.Join(gotGone, "\n  "), strings.Join(wantGone, "\n  "))
			}
			if want := len(j.keys) - len(wantGone); v.Unchanged != want {
				t.Fatalf("seed %d round %d: unchanged %d, want %d", seed, round, v.Unchanged, want)
			}
		}
	}
	if worseSeen == 0 {
		t.Fatal("no random change made a finding worse: the test says nothing of Worsened")
	}
	t.Logf("%d worsened findings checked", worseSeen)
}

// keyDiff returns the findings of a whose key is not in b: the plain
// reference the property test holds the judge's diff to.
func keyDiff(a, b []check.Finding) []check.Finding {
	in := make(map[string]struct{}, len(b))
	for i := range b {
		in[b[i].Key()] = struct{}{}
	}
	var out []check.Finding
	for _, f := range a {
		if _, ok := in[f.Key()]; !ok {
			out = append(out, f)
		}
	}
	return out
}

// TestCommitMatchesFull holds a sequence of committed changes to a full
// evaluation: after each commit the findings the Judge holds (the base of
// the next verdict) must be those of the whole estate as it now is, so
// that a planner committing moves one by one is never judging against a
// stale picture.
func TestCommitMatchesFull(t *testing.T) {
	rounds := 25
	if testing.Short() {
		rounds = 8
	}
	for seed := int64(1); seed <= 3; seed++ {
		e, p := gen.Estate(gen.Options{VMs: 250 + int(seed)*100, Hypervisors: 12, Seed: seed})
		x := estate.NewIndex(e)
		j, err := NewJudge(x, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(seed), 29))
		committed := 0
		for round := 0; round < rounds; round++ {
			// Changes are drawn from the VMs that still exist.
			now := *e
			now.VMs = x.AllVMs()
			c := randomChange(t, r, &now, 100+round)
			if _, err := j.Commit(c); err != nil {
				continue // an invalid change is neither judged nor made
			}
			committed++
			full := check.Evaluate(x, p, check.Options{})
			if got, want := lines(j.before), lines(full.Findings); !slices.Equal(got, want) {
				t.Fatalf("seed %d round %d: after commit the judge holds %d findings, a full evaluation %d\ngot\n  %s\nwant\n  %s",
					seed, round, len(got), len(want), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
		if committed < rounds/2 {
			t.Fatalf("seed %d: only %d of %d random changes could be committed; the test proves little", seed, committed, rounds)
		}
	}
}

// TestDiffMatchesReference holds diff, in both of its ways of matching (a
// walk of both lists, and binary search when one run is far longer), to
// the plain reference: keys hashed as strings.
func TestDiffMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	mk := func(n, subjects int) []check.Finding {
		var fs []check.Finding
		seen := map[string]bool{}
		for range n {
			f := check.Finding{
				Check:    []string{"VG101", "VG204"}[r.IntN(2)],
				Severity: estate.Severity(3 + r.IntN(2)),
				Subject:  fmt.Sprintf("vm/v%05d", r.IntN(subjects)),
				Related:  []string{fmt.Sprintf("image/m@%d", r.IntN(2))},
				Message:  fmt.Sprint(r.IntN(3)),
			}
			if !seen[f.Key()] { // an evaluation never repeats a key
				seen[f.Key()] = true
				fs = append(fs, f)
			}
		}
		check.SortFindings(fs)
		return fs
	}
	for trial := range 200 {
		nb, na := r.IntN(40), r.IntN(2000)
		if trial%2 == 0 {
			nb = r.IntN(4) // far fewer before: binary search
		}
		before, after := mk(nb, 3000), mk(na, 3000)
		wantIntro, wantGone := keyDiff(after, before), keyDiff(before, after)
		gotIntro, gotGone, gotChanged, gotWorse := diff(before, slices.Clone(after))
		if !slices.Equal(lines(gotIntro), lines(wantIntro)) || !slices.Equal(lines(gotGone), lines(wantGone)) {
			t.Fatalf("trial %d (%d before, %d after): introduced %d want %d, resolved %d want %d",
				trial, nb, na, len(gotIntro), len(wantIntro), len(gotGone), len(wantGone))
		}
		was := map[string]check.Finding{}
		for _, f := range before {
			was[f.Key()] = f
		}
		var wantChanged, wantWorse []check.Finding
		for _, f := range after {
			if b, ok := was[f.Key()]; ok && (b.Message != f.Message || b.Severity != f.Severity) {
				wantChanged = append(wantChanged, f)
				if f.Severity > b.Severity {
					wantWorse = append(wantWorse, f)
				}
			}
		}
		if !slices.Equal(lines(gotChanged), lines(wantChanged)) {
			t.Fatalf("trial %d: changed %d, want %d", trial, len(gotChanged), len(wantChanged))
		}
		if !slices.Equal(lines(gotWorse), lines(wantWorse)) {
			t.Fatalf("trial %d: worsened %d, want %d", trial, len(gotWorse), len(wantWorse))
		}
	}
}

// TestCommitRecycledWithChangeOnly: a committed change whose verdict has
// change-only findings (VG502) and thousands of estate findings (a new
// master version) leaves the Judge holding exactly the findings of a full
// evaluation: the array the estate findings came in is recycled only after
// the Judge has copied them.
func TestCommitRecycledWithChangeOnly(t *testing.T) {
	e, p := gen.Estate(gen.Options{VMs: 6000, Hypervisors: 120, Seed: 3})
	x := estate.NewIndex(e)
	j, err := NewJudge(x, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	largest, most := "", 0
	for _, im := range e.Images {
		n := 0
		x.ImageMembers(im.Name, func(estate.ImageMember) { n++ })
		if im.Master && n > most {
			largest, most = im.Name, n
		}
	}
	c, err := Parse("c.yaml", []byte(fmt.Sprintf(`apiVersion: vguard.dev/v1
kind: Change
operations:
  - {op: add-image, spec: {name: %s, version: 9999, master: true}}
  - {op: clone, vm: %s, name: copy-1, sanitize: false}
`, largest, e.VMs[0].Name)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Commit(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Introduced) < 1024 {
		t.Fatalf("only %d findings introduced; the test needs a recycled array (>= 1024)", len(v.Introduced))
	}
	j.Release(v)
	full := check.Evaluate(x, p, check.Options{})
	if got, want := lines(j.Before()), lines(full.Findings); !slices.Equal(got, want) {
		t.Fatalf("after the commit the judge holds %d findings, a full evaluation %d", len(got), len(want))
	}
}

// mustParse parses a Change document or fails the test.
func mustParse(t testing.TB, text string) *Change {
	t.Helper()
	c, err := Parse("c.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCommitAddImageMatchesFull: after Commit of an add-image whose scan
// report lists secrets, the index and the findings the Judge holds agree:
// a full evaluation of the index sees the new image (VG105) too.
func TestCommitAddImageMatchesFull(t *testing.T) {
	dir := t.TempDir()
	if err := gen.WriteDir(dir, gen.Options{VMs: 200, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	res, err := load.Paths([]string{dir}, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := check.NewDiskFiles()
	x := estate.NewIndex(res.Estate)
	j, err := NewJudge(x, res.Policy, files)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(`apiVersion: vguard.dev/v1
kind: Change
operations:
  - {op: add-image, spec: {name: fresh, version: 1, scan: scans/vm-leaky.json}}
`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Commit(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(v.Introduced, func(f check.Finding) bool { return f.Check == "VG105" && f.Subject == "image/fresh@1" }) {
		t.Fatalf("the leaky image introduced no VG105: %s", lines(v.Introduced))
	}
	full := check.Evaluate(x, res.Policy, check.Options{Files: files})
	if got, want := lines(j.before), lines(full.Findings); !slices.Equal(got, want) {
		t.Fatalf("the judge holds %d findings, a full evaluation of its index %d\ngot\n  %s\nwant\n  %s",
			len(got), len(want), strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
