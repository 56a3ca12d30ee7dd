package manifest

import (
	"fmt"
	"path"
	"strings"

	"github.com/vguard-dev/vguard/internal/fspath"
)

// Ignore is a list of paths that drift does not count. Each pattern is an
// absolute path, possibly with path.Match wildcards ('*' never crosses a
// '/'); a pattern that matches a directory also covers everything below it.
// An Ignore is immutable and safe for concurrent use; the nil *Ignore
// ignores nothing.
type Ignore struct {
	patterns []string
	exact    map[string]bool // patterns without wildcards
	globs    []glob
}

type glob struct {
	pattern string
	depth   int // number of components, which a match must have too
}

// homeHistories are the shell and REPL history files of a home directory:
// they change whenever someone logs in.
var homeHistories = []string{
	".bash_history", ".zsh_history", ".ash_history", ".sh_history", ".ksh_history", ".history",
	".python_history", ".node_repl_history", ".mysql_history", ".psql_history",
	".sqlite_history", ".rediscli_history", ".lesshst", ".local/share/fish/fish_history",
}

// defaultPatterns is the default ignore list of cli.md: what changes on
// every running system.
var defaultPatterns = func() []string {
	p := []string{
		"/var/log", "/var/cache", "/var/tmp", "/tmp", "/run", "/proc", "/sys", "/dev",
		"/etc/machine-id", "/var/lib/dbus/machine-id", "/var/lib/systemd/random-seed",
		"/etc/ssh/ssh_host_*", "/var/lib/dhcp",
	}
	// Histories in home directories only: a file named .bash_history
	// elsewhere (say /usr/lib) is not a history and must not hide drift.
	for _, h := range homeHistories {
		p = append(p, "/root/"+h, "/home/*/"+h)
	}
	return p
}()

var defaultIgnore = mustIgnore(defaultPatterns...)

// DefaultIgnore returns the default ignore list of cli.md: /var/log,
// /var/cache, /var/tmp, /tmp, /run, /proc, /sys, /dev, /etc/machine-id,
// /var/lib/dbus/machine-id, /var/lib/systemd/random-seed,
// /etc/ssh/ssh_host_*, /var/lib/dhcp and the shell histories of /root and
// /home/*.
func DefaultIgnore() *Ignore { return defaultIgnore }

// DefaultIgnorePatterns returns a copy of the default patterns, for callers
// that extend the list with NewIgnore.
func DefaultIgnorePatterns() []string { return append([]string(nil), defaultPatterns...) }

// NewIgnore builds an ignore list from patterns (see Ignore).
func NewIgnore(patterns ...string) (*Ignore, error) {
	ig := &Ignore{patterns: append([]string(nil), patterns...), exact: map[string]bool{}}
	for _, p := range patterns {
		if err := validPath(p); err != nil {
			return nil, fmt.Errorf("ignore pattern: %w", err)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("ignore pattern %s: %w", quote(p), err)
		}
		if strings.ContainsAny(p, `*?[\`) {
			ig.globs = append(ig.globs, glob{pattern: p, depth: depth(p)})
		} else {
			ig.exact[p] = true
		}
	}
	return ig, nil
}

func mustIgnore(patterns ...string) *Ignore {
	ig, err := NewIgnore(patterns...)
	if err != nil {
		panic(err)
	}
	return ig
}

// Patterns returns a copy of the list's patterns.
func (ig *Ignore) Patterns() []string {
	if ig == nil {
		return nil
	}
	return append([]string(nil), ig.patterns...)
}

// Match reports whether p (an absolute, clean path) or one of its parent
// directories matches a pattern.
//
// A disk image with several filesystems shows each under /partN (the
// partition's number; internal/imagefs): a path under /partN is also
// matched as the path in its own filesystem, so /part1/var/log/syslog is
// ignored by /var/log as /var/log/syslog of a single-filesystem image is.
func (ig *Ignore) Match(p string) bool {
	if ig.match(p) {
		return true
	}
	if rel, ok := fspath.InPartition(p); ok {
		return ig.match(rel)
	}
	return false
}

func (ig *Ignore) match(p string) bool {
	if ig == nil || p == "" {
		return false
	}
	if ig.exact["/"] {
		return true
	}
	d := 0
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			d++
			if ig.matchOne(p[:i], d) {
				return true
			}
		}
	}
	return false
}

func (ig *Ignore) matchOne(prefix string, d int) bool {
	if ig.exact[prefix] {
		return true
	}
	for _, g := range ig.globs {
		if g.depth == d {
			if ok, _ := path.Match(g.pattern, prefix); ok {
				return true
			}
		}
	}
	return false
}

// depth counts the components of an absolute path: "/" 0, "/a/b" 2.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
