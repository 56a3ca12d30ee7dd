package secrets

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// neutralLines fill most of the benchmark corpus: log lines, source code,
// configuration and prose with none of the rules' keywords.
var neutralLines = []string{
	"2024-11-26T01:28:35.123Z INFO  http: GET /api/v1/employees/4711 200 12.3ms bytes=5120 client=10.0.4.17",
	"2024-11-26T01:28:35.456Z DEBUG cache: miss key=employee:4711 ttl=300s backend=memcached-2",
	"Nov 26 01:28:35 web1 systemd[1]: Started Daily apt download activities.",
	"Nov 26 01:28:36 web1 kernel: [12345.678901] EXT4-fs (vda1): re-mounted. Opts: errors=remount-ro",
	"func (s *Server) handleEmployees(w http.ResponseWriter, r *http.Request) {",
	"	rows, err := s.db.QueryContext(ctx, \"SELECT id, name, team FROM employees WHERE team = $1\", team)",
	"	if err != nil {",
	"		return fmt.Errorf(\"listing employees of %s: %w\", team, err)",
	"	}",
	"}",
	"import os, sys, json, logging",
	"    for row in reader:",
	"        total += int(row['amount'])",
	"listen_addresses = '*'",
	"max_connections = 200",
	"shared_buffers = 2GB",
	"server {",
	"    listen 443 ssl http2;",
	"    server_name hr.internal;",
	"    location / { proxy_pass http://127.0.0.1:8080; }",
	"<VirtualHost *:80>",
	"  DocumentRoot /var/www/html",
	"[Unit]",
	"Description=HR application",
	"After=network-online.target",
	"ExecStart=/usr/local/bin/hr-app --config /etc/hr/app.yaml",
	"  replicas: 3",
	"  selector:",
	"    matchLabels:",
	"      app: hr",
	"The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.",
	"This program is free software; you can redistribute it and/or modify it under the terms",
	"of the GNU General Public License as published by the Free Software Foundation.",
	"#include <stdio.h>",
	"static int parse_header(const char *buf, size_t len, struct header *h)",
	"	memcpy(h->name, buf, min(len, sizeof h->name));",
	"export LANG=C.UTF-8",
	"if [ -f /etc/default/hr ]; then . /etc/default/hr; fi",
	"deb http://deb.debian.org/debian bookworm main",
	"Package: libc6",
	"Version: 2.36-9+deb12u9",
	"Depends: libgcc-s1",
	"",
}

// benchCorpus builds size bytes of text: neutral lines, one line in
// keywordEvery mentioning a keyword (a config key, a log line about
// tokens, a command), and a planted secret about every 64 KiB.
func benchCorpus(size, keywordEvery int) []byte {
	r := rand.New(rand.NewSource(42))
	var b bytes.Buffer
	b.Grow(size + 4096)
	ids := []string{}
	for id := range planters {
		if ruleByID(id).Path == nil {
			ids = append(ids, id)
		}
	}
	// Sorted for determinism.
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if ids[j] < ids[i] {
				ids[i], ids[j] = ids[j], ids[i]
			}
		}
	}
	next := 64 << 10
	for b.Len() < size {
		switch {
		case b.Len() > next:
			_, before, value, after := planters[ids[r.Intn(len(ids))]](r, r.Intn(6))
			b.WriteString(before + value + after)
			next += 64 << 10
		case r.Intn(keywordEvery) == 0:
			b.WriteString(fillerLines[r.Intn(len(fillerLines))])
			b.WriteByte('\n')
		default:
			b.WriteString(neutralLines[r.Intn(len(neutralLines))])
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

var (
	benchOnce sync.Once
	benchText []byte
	benchBin  []byte
)

const benchSize = 64 << 20

func benchData() ([]byte, []byte) {
	benchOnce.Do(func() {
		benchText = benchCorpus(benchSize, 50)
		// Binary: pseudo-random bytes with NULs (an executable, a
		// database page), where only binary rules run.
		r := rand.New(rand.NewSource(7))
		benchBin = make([]byte, benchSize)
		r.Read(benchBin)
		for i := 0; i < len(benchBin); i += 512 {
			benchBin[i] = 0
		}
	})
	return benchText, benchBin
}

// scanFiles scans data as files of fileSize bytes.
func scanFiles(b *testing.B, s *Scanner, data []byte, fileSize int) int {
	n := 0
	for off := 0; off < len(data); off += fileSize {
		end := min(off+fileSize, len(data))
		if err := s.Scan(fmt.Sprintf("/srv/f%d.conf", off), bytes.NewReader(data[off:end]), func(Finding) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkScan: text-heavy corpus (64 MB, one keyword line in 50, a
// secret per 64 KiB), as files of 1 MiB, one goroutine.
func BenchmarkScan(b *testing.B) {
	text, _ := benchData()
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if scanFiles(b, s, text, 1<<20) == 0 {
			b.Fatal("no findings")
		}
	}
}

// BenchmarkScanSmallFiles: the same text as 16 KiB files, as a real tree
// of configs and scripts is.
func BenchmarkScanSmallFiles(b *testing.B) {
	text, _ := benchData()
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scanFiles(b, s, text, 16<<10)
	}
}

// BenchmarkScanDense: every line mentions a keyword (the worst case the
// prefilter can meet: every line goes to the regexes).
func BenchmarkScanDense(b *testing.B) {
	text := benchCorpus(8<<20, 1)
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scanFiles(b, s, text, 1<<20)
	}
}

// BenchmarkScanBinary: 64 MB of binary files (1 MiB each); only the
// binary rules (private keys, keytabs) read them.
func BenchmarkScanBinary(b *testing.B) {
	_, bin := benchData()
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bin)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scanFiles(b, s, bin, 1<<20)
	}
}

// BenchmarkScanZeros: a 256 MiB file of zero bytes (a preallocated swap
// file), with the zero-run shortcut and feeding every byte.
func BenchmarkScanZeros(b *testing.B) {
	zeros := make([]byte, 256<<20)
	for _, feed := range []bool{false, true} {
		name := map[bool]string{false: "skip", true: "feed"}[feed]
		b.Run(name, func(b *testing.B) {
			s, err := NewScanner(Builtin())
			if err != nil {
				b.Fatal(err)
			}
			s.feedZeros = feed
			b.SetBytes(int64(len(zeros)))
			for b.Loop() {
				if err := s.Scan("/swapfile", bytes.NewReader(zeros), func(Finding) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrefilter: the keyword automaton alone over the text corpus.
func BenchmarkPrefilter(b *testing.B) {
	text, _ := benchData()
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	var hits []hitRec
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hits, _ = s.text.ac.scan(text, 0, hits[:0])
	}
}

// BenchmarkScanParallel: the text corpus as 1 MiB files scanned by
// GOMAXPROCS goroutines sharing one Scanner.
func BenchmarkScanParallel(b *testing.B) {
	text, _ := benchData()
	s, err := NewScanner(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	const fileSize = 1 << 20
	b.SetBytes(fileSize)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		off := 0
		for pb.Next() {
			if err := s.Scan("/srv/f.conf", bytes.NewReader(text[off:off+fileSize]), func(Finding) {}); err != nil {
				b.Error(err)
				return
			}
			off = (off + fileSize) % (len(text) - fileSize)
		}
	})
}
