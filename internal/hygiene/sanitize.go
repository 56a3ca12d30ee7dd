package hygiene

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/identity"
	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/progress"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// SanitizeOptions tune Sanitize.
type SanitizeOptions struct {
	// RemoveSecretFiles drops files holding secrets instead of replacing
	// each secret's value by the marker.
	RemoveSecretFiles bool
	// Progress, which may be nil, shows the copy's progress.
	Progress *progress.Bar
}

// Action is one change sanitizing made.
type Action struct {
	Path string `json:"path"`
	// Action is what was done: empty, remove, rewrite, reset (identity),
	// redact or remove-secret-file (secrets), or skip (an entry the output
	// cannot hold).
	Action string `json:"action"`
	// Reason is the identity kind, the secret rules, or why it was skipped.
	Reason string `json:"reason"`
	// Secrets counts the values redacted.
	Secrets int `json:"secrets,omitempty"`
}

// SanitizeReport says what Sanitize did, and what the re-scan of the copy
// found (nothing, when the copy is good).
type SanitizeReport struct {
	Image   string             `json:"image"`
	Output  string             `json:"output"`
	Format  string             `json:"format"`
	Actions []Action           `json:"actions"`
	Rescan  *scanreport.Report `json:"rescan"`
}

// ErrNotClean is returned (wrapped) when the re-scan of the sanitized copy
// still finds secrets or identity; the report lists them.
var ErrNotClean = errors.New("the sanitized copy still holds secrets or identity")

// spoolLimit is the largest file of a tar stream held in memory while it is
// judged; a larger one goes to a temporary file. A tar entry's header
// carries its size, so the content must be judged before it is written.
const spoolLimit = 32 << 20

// Sanitize writes a copy of img to out without its clone-identity material
// and with every secret removed, then scans the copy and returns
// ErrNotClean if anything remains. out is a directory (new or empty) or,
// by its suffix, a tar archive (.tar, .tar.gz, .tgz, .tar.zst). Owners,
// modes and times are kept (owners in a directory only when running as
// root); devices and pipes are kept in a tar and skipped, with an action
// saying so, in a directory.
func (s *Scanner) Sanitize(img imagefs.Image, image, out string, opts SanitizeOptions) (*SanitizeReport, error) {
	snk, format, err := openSink(out)
	if err != nil {
		return nil, fmt.Errorf("sanitize: %w", err)
	}
	rep := &SanitizeReport{Image: image, Output: out, Format: format, Actions: []Action{}}
	w := &writer{s: s, snk: snk, rep: rep, opts: opts, removed: map[string]bool{}}
	if img.RandomAccess() {
		// Scan on every core first; then copy, knowing each file's fate.
		res, err := s.Scan(img, nil)
		if err != nil {
			abort(snk)
			return nil, err
		}
		w.found = map[string]*FileResult{}
		for _, f := range res.Files {
			w.found[f.Entry.Path] = f
		}
	}
	if err := img.Walk(w.entry); err != nil {
		abort(snk)
		return nil, err
	}
	opts.Progress.Done()
	if err := snk.close(); err != nil {
		return nil, fmt.Errorf("sanitize: writing %s: %w", out, err)
	}
	return rep, s.rescan(rep)
}

// rescan scans the copy and records what it found.
func (s *Scanner) rescan(rep *SanitizeReport) error {
	img, err := imagefs.Open(rep.Output)
	if err != nil {
		return fmt.Errorf("sanitize: reading the copy back: %w", err)
	}
	defer img.Close()
	res, err := s.Scan(img, nil)
	if err != nil {
		return fmt.Errorf("sanitize: scanning the copy: %w", err)
	}
	rep.Rescan = res.Report(rep.Output)
	if n := len(rep.Rescan.Secrets) + len(rep.Rescan.Identity); n > 0 {
		return fmt.Errorf("%w: %d finding(s) in %s", ErrNotClean, n, rep.Output)
	}
	return nil
}

// writer copies one image into a sink.
type writer struct {
	s     *Scanner
	snk   sink
	rep   *SanitizeReport
	opts  SanitizeOptions
	found map[string]*FileResult // random-access images: scanned before
	// removed paths, so that a hard link to a removed file goes too.
	removed map[string]bool
}

func (w *writer) act(p, action, reason string, n int) {
	w.rep.Actions = append(w.rep.Actions, Action{Path: p, Action: action, Reason: reason, Secrets: n})
}

func (w *writer) entry(e *imagefs.Entry) error {
	switch e.Type {
	case imagefs.Dir:
		return w.snk.dir(e)
	case imagefs.Symlink:
		if r := identity.Match(e.Path); r != nil && r.Applies == nil && r.Action == identity.Remove {
			w.act(e.Path, "remove", r.ID, 0)
			w.removed[e.Path] = true
			return nil
		}
		return w.snk.symlink(e)
	case imagefs.Other:
		ok, err := w.snk.special(e)
		if err == nil && !ok {
			w.act(e.Path, "skip", "a device, pipe or socket; a directory output holds none (write a tar to keep them)", 0)
		}
		return err
	}
	if e.Link != "" {
		if w.removed[e.Link] {
			w.act(e.Path, "remove", "hard link to a removed file", 0)
			w.removed[e.Path] = true
			return nil
		}
		if r := identity.Match(e.Path); r != nil && r.Applies == nil {
			w.act(e.Path, r.Action.String(), r.ID, 0)
			w.removed[e.Path] = true
			return nil
		}
		return w.snk.hardlink(e, e.Link)
	}
	defer w.opts.Progress.Add(e.Size, 1)
	if w.found != nil {
		return w.file(e, w.found[e.Path], e.Open)
	}
	// A tar stream: hold the content to judge it before writing it.
	src, err := spool(e)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer src.close()
	r, err := src.open()
	if err != nil {
		return err
	}
	fr, err := w.s.inspect(e, identity.Match(e.Path), r)
	r.Close()
	if err != nil {
		return err
	}
	return w.file(e, fr, src.open)
}

// file writes the regular file e, whose scan result is fr (nil: clean).
func (w *writer) file(e *imagefs.Entry, fr *FileResult, open func() (io.ReadCloser, error)) error {
	copyAs := func(size int64, ss []span) error {
		rc, err := open()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		defer rc.Close()
		return w.snk.file(e, size, spliceReader(rc, ss))
	}
	if fr == nil {
		return copyAs(e.Size, nil)
	}
	if r := fr.Identity; r != nil {
		w.act(e.Path, r.Action.String(), r.ID, 0)
		switch r.Action {
		case identity.Remove:
			w.removed[e.Path] = true
			return nil
		case identity.Empty:
			return w.snk.file(e, 0, bytes.NewReader(nil))
		case identity.Rewrite, identity.Reset:
			rc, err := open()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
			content, err := io.ReadAll(io.LimitReader(rc, identity.MaxContent+1))
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", e.Path, err)
			}
			fixed := r.Fix(content)
			// The identity lines go; secrets elsewhere in the file are
			// left to the re-scan to catch, which fails loudly: a MAC pin
			// file holding a password is rare enough to fix by hand.
			return w.snk.file(e, int64(len(fixed)), bytes.NewReader(fixed))
		}
	}
	if len(fr.Secrets) == 0 {
		return copyAs(e.Size, nil)
	}
	rules := ruleList(fr)
	if w.opts.RemoveSecretFiles {
		w.act(e.Path, "remove-secret-file", rules, len(fr.Secrets))
		w.removed[e.Path] = true
		return nil
	}
	ss := spans(fr.Secrets)
	w.act(e.Path, "redact", rules, len(fr.Secrets))
	return copyAs(redactedSize(e.Size, ss), ss)
}

func ruleList(fr *FileResult) string {
	var ids []string
	for _, f := range fr.Secrets {
		ids = append(ids, f.RuleID)
	}
	slices.Sort(ids)
	return strings.Join(slices.Compact(ids), ", ")
}

// spooled is a tar entry's content kept to be read twice: in memory, or in
// a temporary file when large.
type spooled struct {
	data []byte
	file *os.File
}

func spool(e *imagefs.Entry) (*spooled, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if e.Size <= spoolLimit {
		data, err := io.ReadAll(rc)
		return &spooled{data: data}, err
	}
	f, err := os.CreateTemp("", "vguard-spool-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // gone when closed, whatever happens
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return nil, err
	}
	return &spooled{file: f}, nil
}

func (s *spooled) open() (io.ReadCloser, error) {
	if s.file == nil {
		return io.NopCloser(bytes.NewReader(s.data)), nil
	}
	return io.NopCloser(io.NewSectionReader(s.file, 0, 1<<62)), nil
}

func (s *spooled) close() {
	if s.file != nil {
		s.file.Close()
	}
}
