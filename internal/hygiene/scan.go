// Package hygiene finds what a VM image would carry into every clone made
// from it, secrets and clone identity, and writes sanitized copies:
// `vguard image scan` and `vguard image sanitize`. It reads images through
// internal/imagefs, finds secrets with internal/secrets and identity with
// internal/identity; what it adds is the walk over an image on every core,
// the report, the rewriting of files, and the proof: a sanitized copy is
// scanned again, and the copy is only good when that scan finds nothing.
package hygiene

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/vguard-dev/vguard/internal/identity"
	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/progress"
	"github.com/vguard-dev/vguard/internal/scanreport"
	"github.com/vguard-dev/vguard/internal/secrets"
)

// Scanner scans images. It is safe for concurrent use.
type Scanner struct {
	secrets *secrets.Scanner
}

// NewScanner returns a scanner for the given secret rules (the built-in
// ones, with the user's merged in) whose fingerprints are keyed by key, or
// by a random key when it is nil (secrets.NewScannerWithKey).
func NewScanner(rules []*secrets.Rule, key []byte) (*Scanner, error) {
	s, err := secrets.NewScannerWithKey(rules, key)
	if err != nil {
		return nil, err
	}
	return &Scanner{secrets: s}, nil
}

// FileResult is what a scan found in one entry.
type FileResult struct {
	Entry *imagefs.Entry
	// Identity is the identity rule the entry falls under, or nil.
	Identity *identity.Rule
	// Secrets found in the file, by offset.
	Secrets []secrets.Finding
}

// Result is a scan of a whole image.
type Result struct {
	Format string
	// Files holds the entries where something was found, by path.
	Files []*FileResult
	// Scanned counts the regular files read and their bytes.
	Scanned, Bytes int64
}

// Report turns the result into the scan report of cli.md, secrets and
// identity each sorted by path (secrets then by line and rule).
func (r *Result) Report(image string) *scanreport.Report {
	rep := &scanreport.Report{
		Image: image, Format: r.Format,
		Secrets: []scanreport.Secret{}, Identity: []scanreport.Identity{},
		Summary: scanreport.Summary{Files: r.Scanned, Bytes: r.Bytes},
	}
	for _, f := range r.Files {
		if f.Identity != nil {
			rep.Identity = append(rep.Identity, scanreport.Identity{Kind: f.Identity.ID, Path: f.Entry.Path})
		}
		for _, s := range f.Secrets {
			rep.Secrets = append(rep.Secrets, scanreport.Secret{
				Rule: s.RuleID, Path: f.Entry.Path, Line: s.Line, Redacted: s.Redacted, Fingerprint: s.Fingerprint,
			})
		}
	}
	slices.SortStableFunc(rep.Secrets, func(a, b scanreport.Secret) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule))
	})
	rep.Summary.Secrets, rep.Summary.Identity = len(rep.Secrets), len(rep.Identity)
	return rep
}

// Scan reads every entry of img: regular files are scanned for secrets,
// and every path is checked against the identity catalogue. Images that
// allow it are scanned on every core; a tar stream is scanned as it goes
// by. bar, which may be nil, shows progress.
func (s *Scanner) Scan(img imagefs.Image, bar *progress.Bar) (*Result, error) {
	res := &Result{Format: img.Format()}
	var mu sync.Mutex
	record := func(fr *FileResult, size int64) {
		mu.Lock()
		defer mu.Unlock()
		if fr != nil {
			res.Files = append(res.Files, fr)
		}
		if fr == nil || fr.Entry.Type == imagefs.File {
			res.Scanned++
			res.Bytes += size
		}
		bar.Add(size, 1)
	}

	if !img.RandomAccess() {
		err := img.Walk(func(e *imagefs.Entry) error {
			fr, err := s.scanEntry(e, nil)
			if err != nil {
				return err
			}
			if e.Type == imagefs.File {
				record(fr, e.Size)
			} else if fr != nil {
				mu.Lock()
				res.Files = append(res.Files, fr)
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sortResults(res.Files)
		return res, nil
	}

	var files []*imagefs.Entry
	var total int64
	err := img.Walk(func(e *imagefs.Entry) error {
		switch e.Type {
		case imagefs.File:
			files = append(files, e)
			total += e.Size
		default:
			if fr, err := s.scanEntry(e, nil); err != nil {
				return err
			} else if fr != nil {
				res.Files = append(res.Files, fr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bar.SetTotal(total, int64(len(files)))
	links := &linkScans{m: map[linkKey]*linkScan{}}
	err = imagefs.ForEach(files, func(_, i int) error {
		fr, err := s.scanEntry(files[i], links)
		if err == nil {
			record(fr, files[i].Size)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Files = dedupeLinks(res.Files)
	sortResults(res.Files)
	return res, nil
}

// findingKey is a secret as found in a content: the same key under two
// names of one file is one secret.
type findingKey struct {
	rule           string
	offset, length int64
}

// dedupeLinks leaves, in the result of each hard link, only the secrets its
// first name's scan did not find: those its own path brought in (a rule
// confined to ~/.kube/config, say, when the first name is /backup/x). A
// link left with nothing to say is dropped.
func dedupeLinks(fs []*FileResult) []*FileResult {
	first := map[string]map[findingKey]bool{}
	for _, f := range fs {
		if f.Entry.Link == "" && len(f.Secrets) > 0 {
			keys := map[findingKey]bool{}
			for _, sec := range f.Secrets {
				keys[findingKey{sec.RuleID, sec.Offset, sec.Length}] = true
			}
			first[f.Entry.Path] = keys
		}
	}
	out := fs[:0]
	for _, f := range fs {
		if f.Entry.Link != "" {
			seen := first[f.Entry.Link]
			f.Secrets = slices.DeleteFunc(f.Secrets, func(sec secrets.Finding) bool {
				return seen[findingKey{sec.RuleID, sec.Offset, sec.Length}]
			})
			if len(f.Secrets) == 0 {
				f.Secrets = nil
				if f.Identity == nil {
					continue
				}
			}
		}
		out = append(out, f)
	}
	return out
}

func sortResults(fs []*FileResult) {
	slices.SortFunc(fs, func(a, b *FileResult) int { return cmp.Compare(a.Entry.Path, b.Entry.Path) })
}

// linkScans remembers, for one scan of a random-access image, what the
// content of a file reached by several names gave under each set of rules
// its names admit (secrets.Scanner.PathKey): a crafted image may give one
// file a million names, and its content is read once per set, not once per
// name.
type linkScans struct {
	mu sync.Mutex
	m  map[linkKey]*linkScan
}

type linkKey struct{ target, rules string }

type linkScan struct {
	once    sync.Once
	secrets []secrets.Finding
	err     error
}

func (l *linkScans) get(k linkKey) *linkScan {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.m[k]
	if ls == nil {
		ls = &linkScan{}
		l.m[k] = ls
	}
	return ls
}

// scanEntry checks one entry: identity by path (and content where the rule
// needs it), secrets in the content of regular files. links is nil for a
// tar stream; for a random-access image it lets a hard link's content be
// scanned under its own name. It returns nil when nothing was found.
func (s *Scanner) scanEntry(e *imagefs.Entry, links *linkScans) (*FileResult, error) {
	rule := identity.Match(e.Path)
	switch e.Type {
	case imagefs.File:
	case imagefs.Symlink:
		// A link at an identity path (cloud-init's instance link) goes
		// with the state it points to; one whose rule looks at content
		// carries nothing of its own.
		if rule != nil && rule.Applies == nil && rule.Action == identity.Remove {
			return &FileResult{Entry: e, Identity: rule}, nil
		}
		return nil, nil
	default:
		return nil, nil
	}
	if e.Link != "" {
		return s.scanLink(e, rule, links)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Path, err)
	}
	defer rc.Close()
	return s.inspect(e, rule, rc)
}

// scanLink checks a hard link. At an identity path it is taken to hold
// identity even when the rule would look at the content (a machine-id
// linked to a file holding an ID): in a tar that content is gone from the
// stream, every format is judged alike, and a sealed image has no such
// link.
func (s *Scanner) scanLink(e *imagefs.Entry, rule *identity.Rule, links *linkScans) (*FileResult, error) {
	var fr *FileResult
	if rule != nil {
		fr = &FileResult{Entry: e, Identity: rule}
	}
	if links == nil {
		// A tar stream: the content went by under the first name and
		// was scanned there only. Rules confined to a path
		// (kubeconfig-token, pgpass, ...) never see it under this one;
		// docs/secrets.md says so.
		return fr, nil
	}
	key := s.secrets.PathKey(e.Path)
	if key == s.secrets.PathKey(e.Link) {
		return fr, nil // the same rules as the first name: its findings
	}
	// Scanned under this name too, for the rules confined to paths; what
	// the first name's scan found as well is dropped once all is scanned
	// (dedupeLinks).
	ls := links.get(linkKey{e.Link, key})
	ls.once.Do(func() {
		rc, err := e.Open()
		if err != nil {
			ls.err = fmt.Errorf("%s: %w", e.Path, err)
			return
		}
		defer rc.Close()
		if err := s.secrets.Scan(e.Path, rc, func(f secrets.Finding) { ls.secrets = append(ls.secrets, f) }); err != nil {
			ls.err = fmt.Errorf("%s: %w", e.Path, err)
		}
	})
	if ls.err != nil {
		return nil, ls.err
	}
	if len(ls.secrets) == 0 {
		return fr, nil
	}
	if fr == nil {
		fr = &FileResult{Entry: e}
	}
	for _, f := range ls.secrets {
		f.Path = e.Path
		fr.Secrets = append(fr.Secrets, f)
	}
	slices.SortFunc(fr.Secrets, func(a, b secrets.Finding) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.RuleID, b.RuleID))
	})
	return fr, nil
}

// inspect judges the content of the regular file e, read from r: whether
// its identity rule (which may be nil) applies, and what secrets it holds.
// It returns nil when nothing was found.
func (s *Scanner) inspect(e *imagefs.Entry, rule *identity.Rule, r io.Reader) (*FileResult, error) {
	fr := &FileResult{Entry: e}
	if rule != nil && rule.NeedsContent() && e.Size <= identity.MaxContent {
		// Small by the catalogue's definition: read it once for both.
		content, err := io.ReadAll(io.LimitReader(r, identity.MaxContent+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Path, err)
		}
		if rule.Applies == nil || rule.Applies(content) {
			fr.Identity = rule
		}
		r = bytes.NewReader(content)
	} else if rule != nil {
		// The path says it, or the file is larger than any sealed one
		// (login records of a long-lived server run to many megabytes).
		fr.Identity = rule
	}
	err := s.secrets.Scan(e.Path, r, func(f secrets.Finding) { fr.Secrets = append(fr.Secrets, f) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Path, err)
	}
	if fr.Identity == nil && len(fr.Secrets) == 0 {
		return nil, nil
	}
	slices.SortFunc(fr.Secrets, func(a, b secrets.Finding) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.RuleID, b.RuleID))
	})
	return fr, nil
}
