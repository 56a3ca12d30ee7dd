package hygiene

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/vguard-dev/vguard/internal/identity"
	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/progress"
	"github.com/vguard-dev/vguard/internal/scanreport"
	"github.com/vguard-dev/vguard/internal/secrets"
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

// maxRewrite bounds the identity files sanitize rewrites in memory (network
// configuration of a few kilobytes, in practice).
const maxRewrite = 64 << 20

// spoolLimit is the largest file of a tar stream held in memory while it is
// judged; a larger one goes to a temporary file. A tar entry's header
// carries its size, so the content must be judged before it is written.
const spoolLimit = 32 << 20

// Sanitize writes a copy of img to out without its clone-identity material
// and with every secret removed, then scans the copy and returns
// ErrNotClean if anything remains. out is a directory (new or empty) or,
// by its suffix, a tar archive (.tar, .tar.gz, .tgz, .tar.zst): see
// imagefs.Create, which also keeps owners, modes and times. Devices and
// pipes are kept in a tar and skipped, with an action saying so, in a
// directory.
func (s *Scanner) Sanitize(img imagefs.Image, image, out string, opts SanitizeOptions) (*SanitizeReport, error) {
	rep := &SanitizeReport{Image: image, Output: out, Format: imagefs.OutputFormat(out), Actions: []Action{}}
	if rep.Format != "dir" {
		// An archive is written whole or not at all: an existing one is
		// not replaced (it might be the image itself, by another name).
		if _, err := os.Lstat(out); err == nil {
			return nil, fmt.Errorf("sanitize: %s exists; remove it or name another output", out)
		}
	}
	e := &editor{s: s, rep: rep, opts: opts}
	if img.RandomAccess() {
		// Scan on every core first (the bar follows this, the long part);
		// then copy, knowing each file's fate.
		res, err := s.Scan(img, opts.Progress)
		if err != nil {
			return nil, err
		}
		e.found = map[string]*FileResult{}
		for _, f := range res.Files {
			e.found[f.Entry.Path] = f
		}
		e.linkSecrets(res.Files)
	}
	w, err := imagefs.Create(out)
	if err != nil {
		return nil, fmt.Errorf("sanitize: %w", err)
	}
	err = imagefs.Copy(img, w, e.edit)
	opts.Progress.Done()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if rep.Format != "dir" {
			os.Remove(out) // never leave a truncated archive that looks whole
		}
		return nil, fmt.Errorf("sanitize: writing %s: %w", out, err)
	}
	for _, p := range w.Skipped() {
		rep.Actions = append(rep.Actions, Action{Path: p, Action: "skip",
			Reason: "a device, pipe or socket: a directory holds none (write a tar to keep them)"})
	}
	slices.SortStableFunc(rep.Actions, func(a, b Action) int { return strings.Compare(a.Path, b.Path) })
	return rep, s.rescan(rep)
}

// rescan scans the copy and records what it found.
func (s *Scanner) rescan(rep *SanitizeReport) (err error) {
	if rep.Format == "dir" {
		// rerr, not err: the deferred restore must report into the
		// named result, which a new err here would shadow.
		restore, rerr := readable(rep.Output)
		if rerr != nil {
			return fmt.Errorf("sanitize: reading the copy back: %w", rerr)
		}
		defer func() {
			if rerr := restore(); rerr != nil && err == nil {
				err = fmt.Errorf("sanitize: putting back the modes of the copy: %w", rerr)
			}
		}()
	}
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

// readable is readableCopy; a test makes its restore fail, which no real
// chmod of a file the user owns can be made to do on cue.
var readable = readableCopy

// readableCopy lets a user other than root scan the directory copy it
// wrote: the copy keeps the image's modes, and a file of mode 0000 (the
// /etc/shadow of RHEL and Fedora) is then closed even to the user who owns
// it. Files of out that this user owns and cannot read get u+r, and such
// directories u+rx, until restore puts their modes back. Root reads them
// as they are.
func readableCopy(out string) (restore func() error, err error) {
	uid := os.Geteuid()
	type opened struct {
		path string
		mode fs.FileMode
	}
	var done []opened
	restore = func() error {
		var errs []error
		// Backwards: a directory's entries before the directory, which
		// may close again.
		for i := len(done) - 1; i >= 0; i-- {
			if err := os.Chmod(done[i].path, done[i].mode); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	if uid == 0 {
		return restore, nil
	}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var need fs.FileMode
		switch {
		case d.IsDir():
			need = 0o500
		case d.Type().IsRegular():
			need = 0o400
		default:
			return nil // a link is not followed; nothing else is read
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
			return nil
		}
		mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if mode&need == need {
			return nil
		}
		// WalkDir reads a directory after this call: opened first.
		if err := os.Chmod(p, mode|need); err != nil {
			return err
		}
		done = append(done, opened{p, mode})
		return nil
	})
	if err != nil {
		return nil, errors.Join(err, restore())
	}
	return restore, nil
}

// editor decides, entry by entry, what the copy holds (imagefs.Edit).
type editor struct {
	s     *Scanner
	rep   *SanitizeReport
	opts  SanitizeOptions
	found map[string]*FileResult // random-access images: scanned before
	// viaLink holds, by first name, the results the editor uses for a
	// file one of whose hard links holds secrets its own path did not
	// find (linkSecrets).
	viaLink map[string]*FileResult
}

// linkSecrets gives the first name of each hard link the secrets found
// only under the link's path (a token found at /root/.kube/config, whose
// first name is /backup/x): the shared content is redacted once, under the
// first name, so that every name of the file reads it redacted, and the
// link stays a link. Writing the link as a file of its own would leave the
// value in the copy under the first name, where the path-confined rule
// that found it does not look, and the copy would be called clean.
func (ed *editor) linkSecrets(fs []*FileResult) {
	ed.viaLink = map[string]*FileResult{}
	for _, f := range fs {
		if f.Entry.Link == "" || len(f.Secrets) == 0 {
			continue
		}
		merged := ed.viaLink[f.Entry.Link]
		if merged == nil {
			merged = &FileResult{}
			if own := ed.found[f.Entry.Link]; own != nil {
				merged.Identity = own.Identity
				merged.Secrets = slices.Clone(own.Secrets)
			}
			ed.viaLink[f.Entry.Link] = merged
		}
		for _, sec := range f.Secrets {
			if !slices.ContainsFunc(merged.Secrets, func(m secrets.Finding) bool {
				return m.RuleID == sec.RuleID && m.Offset == sec.Offset && m.Length == sec.Length
			}) {
				merged.Secrets = append(merged.Secrets, sec)
			}
		}
	}
}

func (ed *editor) act(p, action, reason string, n int) {
	ed.rep.Actions = append(ed.rep.Actions, Action{Path: p, Action: action, Reason: reason, Secrets: n})
}

func (ed *editor) edit(e *imagefs.Entry) (drop bool, content io.Reader, err error) {
	switch e.Type {
	case imagefs.Symlink:
		if r := identity.Match(e.Path); r != nil && r.Applies == nil && r.Action == identity.Remove {
			ed.act(e.Path, "remove", r.ID, 0)
			return true, nil, nil
		}
		return false, nil, nil
	case imagefs.File:
	default:
		return false, nil, nil
	}
	if e.Link != "" {
		// A hard link (one to a dropped file never gets here). At an
		// identity path it becomes what the rule leaves: nothing, or a
		// file of its own, empty or reset. A rewrite needs the content,
		// which in a tar went by in the stream under the first name: the
		// link is dropped.
		r := identity.Match(e.Path)
		if r == nil {
			if fr := ed.found[e.Path]; fr != nil && len(fr.Secrets) > 0 {
				// Secrets found under this name only: the first name
				// was written redacted of them too (linkSecrets).
				ed.act(e.Path, "redact", ruleList(fr), len(fr.Secrets))
			}
			return false, nil, nil
		}
		switch r.Action {
		case identity.Empty:
			ed.act(e.Path, r.Action.String(), r.ID, 0)
			e.Link, e.Size = "", 0
			return false, bytes.NewReader(nil), nil
		case identity.Reset:
			ed.act(e.Path, r.Action.String(), r.ID, 0)
			fixed := r.Fix(nil)
			e.Link, e.Size = "", int64(len(fixed))
			return false, bytes.NewReader(fixed), nil
		}
		ed.act(e.Path, "remove", r.ID, 0)
		return true, nil, nil
	}
	if ed.found != nil {
		fr := ed.found[e.Path]
		if merged := ed.viaLink[e.Path]; merged != nil {
			fr = merged
		}
		if fr == nil {
			return false, nil, nil // clean: copied as it is
		}
		return ed.file(e, fr, e.Open)
	}
	// A tar stream: hold the content to judge it before writing it, as
	// the entry's header carries its size.
	defer ed.opts.Progress.Add(e.Size, 1)
	src, err := spool(e)
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", e.Path, err)
	}
	r, _ := src.open()
	fr, err := ed.s.inspect(e, identity.Match(e.Path), r)
	switch {
	case err != nil:
		src.close()
		return false, nil, err
	case fr == nil: // clean: the spooled content, as it is
		c, _ := src.open()
		return false, closing(c, src.close), nil
	}
	drop, content, err = ed.file(e, fr, src.open)
	if content == nil {
		src.close()
		return drop, nil, err
	}
	return drop, closing(content, src.close), err
}

// file decides for the regular file e, whose scan found fr: what to write
// (e.Size set to match) or whether to drop it. open reads its content.
func (ed *editor) file(e *imagefs.Entry, fr *FileResult, open func() (io.ReadCloser, error)) (bool, io.Reader, error) {
	if r := fr.Identity; r != nil {
		ed.act(e.Path, r.Action.String(), r.ID, 0)
		switch r.Action {
		case identity.Remove:
			return true, nil, nil
		case identity.Empty:
			e.Size = 0
			return false, bytes.NewReader(nil), nil
		case identity.Rewrite, identity.Reset:
			rc, err := open()
			if err != nil {
				return false, nil, fmt.Errorf("%s: %w", e.Path, err)
			}
			if e.Size > maxRewrite {
				rc.Close()
				return false, nil, fmt.Errorf("%s: %d bytes is too large a file to rewrite as %s; remove it from the image by hand", e.Path, e.Size, r.ID)
			}
			content, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return false, nil, fmt.Errorf("%s: %w", e.Path, err)
			}
			// The identity lines go; a secret elsewhere in such a file
			// is left for the re-scan to catch, loudly: a MAC pin file
			// holding a password is rare enough to fix by hand.
			fixed := r.Fix(content)
			e.Size = int64(len(fixed))
			return false, bytes.NewReader(fixed), nil
		}
	}
	if len(fr.Secrets) == 0 {
		return false, nil, nil
	}
	rules := ruleList(fr)
	if ed.opts.RemoveSecretFiles {
		ed.act(e.Path, "remove-secret-file", rules, len(fr.Secrets))
		return true, nil, nil
	}
	ss := spans(fr.Secrets)
	ed.act(e.Path, "redact", rules, len(fr.Secrets))
	rc, err := open()
	if err != nil {
		return false, nil, fmt.Errorf("%s: %w", e.Path, err)
	}
	e.Size = redactedSize(e.Size, ss)
	return false, closing(spliceReader(rc, ss), func() { rc.Close() }), nil
}

// closing returns r with a Close that runs done (once): imagefs.Copy
// closes an edited content after writing it, on failure too.
func closing(r io.Reader, done func()) io.ReadCloser { return &closer{r: r, done: done} }

type closer struct {
	r    io.Reader
	done func()
}

func (c *closer) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *closer) Close() error {
	if c.done != nil {
		c.done()
		c.done = nil
	}
	return nil
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
