// Package secrets finds secrets in files: private keys, cloud and SaaS
// tokens, passwords in configs, connection strings, credential files,
// password hashes and keytabs. It is the engine under `vguard image scan`
// and `vguard image sanitize`, which walk an image and hand each regular
// file to a Scanner.
//
// A Scanner makes one pass over each file: an Aho-Corasick automaton finds
// every rule's keywords at once (ASCII case ignored), and a rule's regex
// runs only on the line around a keyword hit. Files are streamed in 256
// KiB chunks with enough overlap that a secret across a boundary is seen
// whole and reported once; binary files (a NUL in the first 8 KiB) are
// only read by the few rules that apply to them. Rules that apply to
// certain files only (.pgpass, /etc/shadow) are decided from the path
// before any byte is read past the first block.
//
// The rules are declared once (Builtin), each with test strings that must
// and must not match; users add rules in the gitleaks TOML format
// (LoadGitleaks). A Finding holds where a secret is, a redacted form and
// a fingerprint, never the value itself.
package secrets
