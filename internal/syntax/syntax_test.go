package syntax

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseJSONLinesAndTags(t *testing.T) {
	n, err := ParseJSON([]byte("{\n \"a\": [1, 2.5, -3e2],\n \"b\": {\"c\": true, \"d\": null},\n \"e\": \"x\\n\\u00e9\\ud83d\\ude00\"\n}"))
	if err != nil {
		t.Fatal(err)
	}
	a := n.Get("a")
	if a.Line != 2 || a.Items[0].Tag != IntTag || a.Items[1].Tag != FloatTag || a.Items[2].Tag != FloatTag {
		t.Errorf("a = %+v", a)
	}
	if b := n.Get("b"); b.Line != 3 || b.Get("c").Tag != BoolTag || b.Get("d").Tag != NullTag {
		t.Errorf("b = %+v", b)
	}
	if e := n.Get("e"); e.Value != "x\né😀" || e.Line != 4 {
		t.Errorf("e = %q line %d", e.Value, e.Line)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a"}`, `{"a":1,}`, `[1 2]`, `01`, `"\x01"`, `"\q"`, `tru`, `{} x`, `"abc`, "\"\xff\"",
		strings.Repeat("[", 1000) + strings.Repeat("]", 1000)} {
		if _, err := ParseJSON([]byte(in)); err == nil {
			t.Errorf("ParseJSON(%q) accepted bad input", in)
		}
	}
}

func TestParseYAMLMultiDoc(t *testing.T) {
	docs, err := ParseYAML([]byte("a: 1\n---\n# only a comment\n---\nb: [x, 'y', 3]\nc: 0x10\nd: 1_000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2 (empty ones skipped)", len(docs))
	}
	b := docs[1].Get("b")
	if b.Line != 5 || b.Items[0].Tag != StrTag || b.Items[2].Tag != IntTag {
		t.Errorf("b = %+v", b)
	}
	var out struct {
		C int `yaml:"c"`
		D int `yaml:"d"`
		B []string
	}
	if errs := Decode("f", docs[1], "", &out); len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown field "b"`) {
		t.Errorf("errs = %v", errs)
	}
	if out.C != 16 || out.D != 1000 {
		t.Errorf("c, d = %d, %d", out.C, out.D)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"hypervsior", "hypervisor", 1}, {"nics", "nics", 0}, {"abc", "", 3}, {"ca", "ac", 1}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// FuzzParseJSON checks the hand-written JSON parser against encoding/json:
// both must agree on what is valid JSON, and it must never panic.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x\u00e9"]}`, `[]`, `"\ud800"`, `-0.0e+1`, `{"a":{"b":null}}`, `[true,false]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseJSON(data)
		if !utf8.Valid(data) {
			return // stricter than encoding/json on purpose: invalid UTF-8 is refused
		}
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("ParseJSON err = %v, but json.Valid = %v for %q", err, valid, data)
		}
	})
}

// FuzzParseYAML: any input gives documents or an error, never a panic.
func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{"a: 1\n", "- &x [1]\n- *x\n", "a: {<<: {b: 1}}\n", "---\n---\n", "a: !foo 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := ParseYAML(data)
		if err == nil {
			for _, d := range docs {
				if d == nil {
					t.Fatal("nil document")
				}
			}
		}
	})
}
