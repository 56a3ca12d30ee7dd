// Package vguard keeps virtualized estates secure. This file maps the code;
// the user's view is in README.md and the contract in the shared spec.
//
// cmd/vguard wires the commands (cobra) and decides every exit code in one
// place; each command is a constructor plus a run function that tests call.
//
// internal/estate is the domain model: zones, networks, hypervisors,
// datastores, images, VMs, services, firewalls and the resolved Policy, with
// the Index that checks walk. It imports nothing of vguard's own.
//
// internal/syntax parses YAML (through go.yaml.in/yaml/v3) and JSON (a fast
// parser of its own, for estates of 100k VMs) into nodes that keep their
// line, and decodes nodes strictly into Go values with field paths.
//
// internal/load reads files and directories of Estate and Policy documents,
// merges them, checks every reference and applies the defaults, reporting
// all problems with file:line and field path.
//
// internal/check is the check engine: the catalogue, declared once, with
// each check's logic beside its declaration, grouped by pillar; and
// Evaluate, which runs the checks concurrently over the index, on the whole
// estate or on a scope.
//
// internal/change judges proposed changes: it reads Change documents,
// applies their operations to an updatable index (estate.Index.EnableUpdates)
// with undo, judges the change-only checks, and re-evaluates only the scope a
// change can affect (check.Scope: each check declares the facts it reads
// and judges only the units in scope), before and after, for the verdict.
//
// internal/blast answers what the loss of each failure unit (or of named
// units together, or of every pair) does to VMs and services.
//
// internal/place repairs placement: migrations that remove the placement
// findings, each move judged by the change judge, with a lower bound.
//
// internal/rollout plans rollouts of a master version across a service:
// canary, batches within the service's limits and failure units, rollback,
// and refusal over members that drifted from their master.
//
// internal/manifest is the file-tree manifest format and its drift diff;
// internal/scanreport reads image scan reports. Both are side files an
// estate points to, read by checks VG203 and VG105.
//
// internal/imagefs reads VM images in pure Go, without root or mounts: a
// directory, tar (plain, gzip, bzip2, zstd, by magic bytes), a raw disk
// with ext2/3/4 on the whole disk or in MBR/GPT partitions (an ext4 reader
// of its own: extents, holes, inline data, htree directories read
// linearly), and qcow2 through go-qcow2reader. One Image interface: Walk
// visits entries, an Entry opens its content (after the walk and
// concurrently for disks, only during the callback for tar); Create and
// Copy write a tree into a directory or a tar, for sanitized copies.
//
// internal/tree turns any image into a manifest, hashing files on every
// core where the format allows, with a stat cache for directories (git's
// index rule, racily clean entries re-hashed).
//
// internal/progress draws a rate-limited progress bar on a terminal's
// stderr for long image reads.
//
// internal/secrets finds secrets in file contents: rules declared once with
// their test strings (built in, or from a gitleaks TOML file), an
// Aho-Corasick keyword prefilter, regexes only in windows around keyword
// hits, files streamed in chunks with overlap, binary files skipped but for
// the rules that read them. A Finding holds where a secret is, a redacted
// form and a fingerprint, never the value.
//
// internal/identity is the catalogue of clone-identity material (machine ID,
// SSH host keys, MAC pins, leases, ...) with the action that seals each.
//
// internal/testnet gives tests misbehaving network peers (one that accepts
// and never answers) for the connectors' timeouts.
//
// internal/fspath makes and takes apart the /partN prefix under which a
// disk with several filesystems shows each, for imagefs, identity and the
// drift ignore list alike.
//
// internal/hygiene is image scan and image sanitize: it walks an image with
// imagefs on every core, asks secrets and identity of each file, and writes
// a sanitized copy through imagefs.Copy, which it then scans again.
//
// internal/report writes check reports as a table for people, JSON for
// programs and SARIF 2.1.0 for code-scanning tools.
//
// internal/gen writes synthetic estates of any size for benchmarks and demos.
//
// internal/server is vguard serve: the HTTP API over one estate, whose one
// route table carries each route's access rule. It keeps its state in
// internal/store (one Store contract, SQLite and PostgreSQL behind it, one
// test suite for both), appends what it decides to internal/audit's hash
// chain (group commit: a verdict is durable before it is answered) and
// checks bearer tokens made by internal/token. api holds the embedded
// OpenAPI document.
//
// internal/connector is what the platform connectors share: the Inventory a
// connector discovers, the overlay of Estate/Policy documents laid over it,
// writing the result (validated by the loader, written atomically), and the
// watch loop's finding events and webhook. internal/libvirt (libvirtd's RPC
// protocol, domain and network XML with vguard metadata, the qemu hook) and
// internal/vsphere (govmomi's property collector, tags, DRS rules) are the
// connectors; their libvirttest and vspheretest packages run a real
// libvirtd and vCenter's simulator for tests.
package vguard
