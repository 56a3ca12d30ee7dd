package load

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// FuzzLoad feeds arbitrary bytes, as YAML and as JSON, to the whole loader:
// it must return a result or errors, never panic or hang. The seeds are
// this package's fixtures and the conformance suite's bad inputs.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base+"vms:\n  - {name: a, hypervisor: hv-1, nics: [{network: n, ports: [22]}]}\n"), false)
	f.Add([]byte(`{"apiVersion":"vguard.dev/v1","kind":"Estate","zones":[{"name":"z","exposure":"public"}]}`), true)
	f.Add([]byte("apiVersion: vguard.dev/v1\nkind: Policy\nseverity: {VG101: low}\nseparate: [{name: r, groups: [{app: a}, {app: b}]}]\n"), false)
	f.Add([]byte("a: &a [*a]\n"), false)
	f.Add([]byte("{\"a\": \"\\ud800\\u0041\"}"), true)
	// The corpus cases and the bundled examples seed the fuzzer with every
	// shape of document the project knows.
	cases, _ := filepath.Glob("../../testdata/checks/*.txtar")
	for _, p := range cases {
		if ar, err := txtar.ParseFile(p); err == nil {
			for _, file := range ar.Files {
				if strings.HasSuffix(file.Name, ".yaml") && file.Name != "want.yaml" {
					f.Add(file.Data, false)
				}
			}
		}
	}
	examples, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, p := range examples {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, false)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "f.yaml"
		if asJSON {
			name = "f.json"
		}
		res, err := Bytes(name, data, Options{})
		if err == nil && res == nil {
			t.Fatal("no result and no error")
		}
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T", err)
			}
		}
	})
}
