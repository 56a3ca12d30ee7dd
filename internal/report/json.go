package report

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/jsonstr"
)

// The JSON report is written by hand rather than by encoding/json: a check
// of a large estate can report 100k findings, and encoding/json (reflection,
// then a second pass to indent) takes several times longer than this
// streaming writer. The output is byte for byte what encoding/json would
// write with SetIndent("", "  ") and SetEscapeHTML(false); a test holds the
// two together.

// checkJSON is the `vguard check --format json` document of cli.md, in the
// spec's field order. Only the test encodes it with encoding/json.
type checkJSON struct {
	Findings []check.Finding `json:"findings"`
	Summary  Summary         `json:"summary"`
	Estate   Stats           `json:"estate"`
}

func writeCheckJSON(w io.Writer, r *CheckReport) error {
	jw := newJSONWriter(w)
	jw.raw("{")
	jw.field("", 1, "findings")
	jw.findings(r.Findings, 1)
	jw.field(",", 1, "summary")
	jw.summary(Summarize(r.Findings), 1)
	jw.field(",", 1, "estate")
	jw.stats(r.Estate, 1)
	jw.raw("\n}\n")
	return jw.flush()
}

// jsonWriter appends to a buffer and hands it to w in large pieces. The
// first write error sticks and ends the output. Its methods take the
// nesting depth of the line the value starts on.
type jsonWriter struct {
	w   io.Writer
	buf []byte
	err error
}

const jsonChunk = 64 << 10

func newJSONWriter(w io.Writer) *jsonWriter {
	return &jsonWriter{w: w, buf: make([]byte, 0, 2*jsonChunk)}
}

func (jw *jsonWriter) maybeFlush() {
	if len(jw.buf) >= jsonChunk && jw.err == nil {
		_, jw.err = jw.w.Write(jw.buf)
		jw.buf = jw.buf[:0]
	}
}

func (jw *jsonWriter) flush() error {
	if jw.err == nil && len(jw.buf) > 0 {
		_, jw.err = jw.w.Write(jw.buf)
		jw.buf = jw.buf[:0]
	}
	return jw.err
}

func (jw *jsonWriter) raw(s string) { jw.buf = append(jw.buf, s...) }

// newline ends the line and indents the next one to depth d (two spaces a
// level).
func (jw *jsonWriter) newline(d int) {
	jw.buf = append(jw.buf, '\n')
	for ; d > len(spaces)/2; d -= len(spaces) / 2 {
		jw.raw(spaces)
	}
	jw.raw(spaces[:2*d])
}

const spaces = "                                "

// field writes sep (a comma or nothing), a new line at depth d and
// `"name": `.
func (jw *jsonWriter) field(sep string, d int, name string) {
	jw.raw(sep)
	jw.newline(d)
	jw.buf = jsonstr.Append(jw.buf, name)
	jw.raw(": ")
}

// findings writes a list of findings, never null.
func (jw *jsonWriter) findings(fs []check.Finding, d int) {
	if len(fs) == 0 {
		jw.raw("[]")
		return
	}
	jw.raw("[")
	for i := range fs {
		if i > 0 {
			jw.raw(",")
		}
		jw.newline(d + 1)
		jw.finding(&fs[i], d+1)
		jw.maybeFlush()
	}
	jw.newline(d)
	jw.raw("]")
}

// finding writes one finding in the shape of cli.md: related is [] and
// evidence {} when the finding has none, never null.
func (jw *jsonWriter) finding(f *check.Finding, d int) {
	jw.raw("{")
	jw.field("", d+1, "check")
	jw.buf = jsonstr.Append(jw.buf, f.Check)
	jw.field(",", d+1, "title")
	jw.buf = jsonstr.Append(jw.buf, f.Title)
	jw.field(",", d+1, "severity")
	jw.buf = jsonstr.Append(jw.buf, f.Severity.String())
	jw.field(",", d+1, "pillar")
	jw.buf = jsonstr.Append(jw.buf, string(f.Pillar))
	jw.field(",", d+1, "subject")
	jw.buf = jsonstr.Append(jw.buf, f.Subject)
	jw.field(",", d+1, "related")
	jw.strings(f.Related, d+1, "[]")
	jw.field(",", d+1, "message")
	jw.buf = jsonstr.Append(jw.buf, f.Message)
	jw.field(",", d+1, "remediation")
	jw.buf = jsonstr.Append(jw.buf, f.Remediation)
	jw.field(",", d+1, "evidence")
	jw.evidence(f.Evidence, d+1)
	jw.newline(d)
	jw.raw("}")
}

// strings writes a list of strings; a nil list is written as ifNil.
func (jw *jsonWriter) strings(ss []string, d int, ifNil string) {
	if ss == nil {
		jw.raw(ifNil)
		return
	}
	if len(ss) == 0 {
		jw.raw("[]")
		return
	}
	jw.raw("[")
	for i, s := range ss {
		if i > 0 {
			jw.raw(",")
		}
		jw.newline(d + 1)
		jw.buf = jsonstr.Append(jw.buf, s)
	}
	jw.newline(d)
	jw.raw("]")
}

// evidence writes the map with sorted keys, as encoding/json does. The
// values checks use (strings, integers, lists of strings) are written
// directly; anything else goes through encoding/json.
func (jw *jsonWriter) evidence(ev map[string]any, d int) {
	if len(ev) == 0 {
		jw.raw("{}")
		return
	}
	var small [8]string
	keys := small[:0]
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	jw.raw("{")
	for i, k := range keys {
		sep := ","
		if i == 0 {
			sep = ""
		}
		jw.field(sep, d+1, k)
		jw.value(ev[k], d+1)
	}
	jw.newline(d)
	jw.raw("}")
}

func (jw *jsonWriter) value(v any, d int) {
	switch v := v.(type) {
	case string:
		jw.buf = jsonstr.Append(jw.buf, v)
	case int:
		jw.buf = strconv.AppendInt(jw.buf, int64(v), 10)
	case int64:
		jw.buf = strconv.AppendInt(jw.buf, v, 10)
	case bool:
		jw.buf = strconv.AppendBool(jw.buf, v)
	case []string:
		jw.strings(v, d, "null")
	default:
		jw.other(v, d)
	}
}

// other encodes an uncommon value with encoding/json, indented to fit.
func (jw *jsonWriter) other(v any, d int) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent(strings.Repeat("  ", d), "  ")
	if err := enc.Encode(v); err != nil {
		if jw.err == nil {
			jw.err = err
		}
		return
	}
	jw.buf = append(jw.buf, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
}

func (jw *jsonWriter) int(sep string, d int, name string, n int) {
	jw.field(sep, d, name)
	jw.buf = strconv.AppendInt(jw.buf, int64(n), 10)
}

func (jw *jsonWriter) summary(s Summary, d int) {
	jw.raw("{")
	jw.int("", d+1, "critical", s.Critical)
	jw.int(",", d+1, "high", s.High)
	jw.int(",", d+1, "medium", s.Medium)
	jw.int(",", d+1, "low", s.Low)
	jw.int(",", d+1, "info", s.Info)
	jw.newline(d)
	jw.raw("}")
}

func (jw *jsonWriter) stats(s Stats, d int) {
	jw.raw("{")
	jw.int("", d+1, "vms", s.VMs)
	jw.int(",", d+1, "hypervisors", s.Hypervisors)
	jw.int(",", d+1, "networks", s.Networks)
	jw.newline(d)
	jw.raw("}")
}
