package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSQLitePathCharacters: the database is the file named, whatever URI
// characters its path holds (once, "prod#1.db" opened "prod", "a%41b.db"
// "aAb.db" and "x?y.db" "x").
func TestSQLitePathCharacters(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"prod#1.db", "a%41b.db", "x?y.db", "sp ace&=;.db"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "odd %2f?#dir")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			s, err := OpenSQLite(ctx, path, SQLiteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutDocument(ctx, Document{Kind: KindEstate, Name: "e.yaml", Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, e := range ents {
				files = append(files, e.Name())
			}
			if !slices.Contains(files, name) || slices.ContainsFunc(files, func(f string) bool {
				return f != name && f != name+"-wal" && f != name+"-shm"
			}) {
				t.Fatalf("files in the directory: %q; want %q (and its -wal, -shm)", files, name)
			}
			ro, err := OpenSQLite(ctx, path, SQLiteOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if d, err := ro.Document(ctx, KindEstate, "e.yaml"); err != nil || string(d.Data) != "x" {
				t.Fatalf("read-only reopen: %q %v", d.Data, err)
			}
		})
	}
}
