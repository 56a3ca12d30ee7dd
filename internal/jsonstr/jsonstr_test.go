package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppend: the bytes are exactly those of encoding/json without HTML
// escaping, for any string, valid UTF-8 or not.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\b\f\n\r\t", "é😀", "\xff\xfe", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, s); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("Append(%q) = %s, want %s", s, got, want.Bytes())
		}
	})
}
