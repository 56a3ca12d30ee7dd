package manifest

// Drift is how one manifest differs from a base, in the JSON shape of
// `vguard drift --format json`. Each list is sorted by path and is never nil,
// so that it encodes as [] rather than null.
type Drift struct {
	// Added are paths present only in the other manifest.
	Added []string `json:"added"`
	// Removed are paths present only in the base.
	Removed []string `json:"removed"`
	// Modified are paths present in both whose entries differ.
	Modified []Modified `json:"modified"`
}

// Modified is a path whose entry differs, and which of its fields do.
type Modified struct {
	Path string `json:"path"`
	// Fields lists the differing fields, in this order: type, size,
	// sha256, target (what the entry is and holds), then mode, uid, gid.
	Fields []string `json:"fields"`
}

// Empty reports whether there is no drift.
func (d *Drift) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Modified) == 0
}

// Total is the number of paths that differ.
func (d *Drift) Total() int { return len(d.Added) + len(d.Removed) + len(d.Modified) }

// Examples returns up to n differing paths, modified ones first (what an
// admin changed on a member is usually the most telling), then added, then
// removed.
func (d *Drift) Examples(n int) []string {
	out := make([]string, 0, min(n, d.Total()))
	for _, m := range d.Modified {
		if len(out) == n {
			return out
		}
		out = append(out, m.Path)
	}
	for _, lists := range [][]string{d.Added, d.Removed} {
		for _, p := range lists {
			if len(out) == n {
				return out
			}
			out = append(out, p)
		}
	}
	return out
}

// Diff compares other with base under the default ignore list: for a member
// and its master, Diff(master, member).
func Diff(base, other *Manifest) *Drift { return DiffIgnoring(base, other, DefaultIgnore()) }

// DiffIgnoring compares other with base, not counting the paths ig matches
// (nil ignores nothing). It is one merge of the two sorted entry lists;
// the ignore list is consulted only for paths that differ.
func DiffIgnoring(base, other *Manifest, ig *Ignore) *Drift {
	d := &Drift{Added: []string{}, Removed: []string{}, Modified: []Modified{}}
	a, b := base.Entries, other.Entries
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Path < b[j].Path:
			if !ig.Match(a[i].Path) {
				d.Removed = append(d.Removed, a[i].Path)
			}
			i++
		case i == len(a) || b[j].Path < a[i].Path:
			if !ig.Match(b[j].Path) {
				d.Added = append(d.Added, b[j].Path)
			}
			j++
		default:
			if f := fieldsDiffer(&a[i], &b[j]); f != nil && !ig.Match(a[i].Path) {
				d.Modified = append(d.Modified, Modified{Path: a[i].Path, Fields: f})
			}
			i++
			j++
		}
	}
	return d
}

// fieldsDiffer lists the fields in which x and y differ, or nil.
func fieldsDiffer(x, y *Entry) []string {
	if *x == *y {
		return nil
	}
	var f []string
	add := func(differ bool, name string) {
		if differ {
			f = append(f, name)
		}
	}
	add(x.Type != y.Type, "type")
	add(x.Size != y.Size, "size")
	add(x.SHA256 != y.SHA256, "sha256")
	add(x.Target != y.Target, "target")
	add(x.Mode != y.Mode, "mode")
	add(x.UID != y.UID, "uid")
	add(x.GID != y.GID, "gid")
	return f
}
