package hygiene

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/vguard-dev/vguard/internal/secrets"
)

// Marker replaces each secret's value in a sanitized file. It is plain
// letters and dashes, so that the file stays parseable whatever held the
// value (a quoted JSON or YAML string, a URL's password, an INI value, a
// shell assignment), and the secret rules know it as no secret, so the
// re-scan of the copy passes.
const Marker = secrets.Marker

// span is a byte range [start, end) of a file and the marker that
// replaces it.
type span struct {
	start, end int64
	marker     string
}

// spans merges the value ranges of a file's secrets (two rules may find
// the same value, or overlapping ones) into sorted, disjoint spans. Each
// span's marker is its rule's (secrets.MarkerFor: base64 where the value
// is base64); merged spans of different markers get the plain one.
func spans(fs []secrets.Finding) []span {
	out := make([]span, 0, len(fs))
	for _, f := range fs {
		out = append(out, span{f.Offset, f.Offset + f.Length, secrets.MarkerFor(f.RuleID)})
	}
	slices.SortFunc(out, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			if merged[n-1].marker != s.marker {
				merged[n-1].marker = Marker
			}
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// redactedSize is the size of a file of size n once spans are replaced.
func redactedSize(n int64, ss []span) int64 {
	for _, s := range ss {
		n += int64(len(s.marker)) - (s.end - s.start)
	}
	return n
}

// spliceReader returns src with each span replaced by its marker. The
// spans must be sorted and disjoint; a span past the end of src is an
// error (the file is not what was scanned).
func spliceReader(src io.Reader, ss []span) io.Reader {
	if len(ss) == 0 {
		return src
	}
	return &spliced{src: src, ss: ss}
}

type spliced struct {
	src     io.Reader
	ss      []span
	pos     int64  // offset in src
	pending string // marker bytes still to give
}

func (s *spliced) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.pending != "" {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if len(s.ss) > 0 && s.pos == s.ss[0].start {
		skip := s.ss[0].end - s.ss[0].start
		if n, err := io.CopyN(io.Discard, s.src, skip); err != nil {
			return 0, fmt.Errorf("secret at offset %d: file ends %d bytes into it: %w", s.pos, n, io.ErrUnexpectedEOF)
		}
		s.pos += skip
		s.pending = s.ss[0].marker
		s.ss = s.ss[1:]
		return s.Read(p)
	}
	if len(s.ss) > 0 {
		p = p[:min(int64(len(p)), s.ss[0].start-s.pos)]
	}
	n, err := s.src.Read(p)
	s.pos += int64(n)
	if err == io.EOF && len(s.ss) > 0 {
		err = fmt.Errorf("secret at offset %d lies past the end of the file (%d bytes): %w", s.ss[0].start, s.pos, io.ErrUnexpectedEOF)
	}
	return n, err
}
