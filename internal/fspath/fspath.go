// Package fspath names paths inside images that hold several filesystems.
// A disk image with more than one filesystem shows each under /partN (N the
// partition's number); everything that judges a path by where it lies in
// its own filesystem (identity rules, drift's ignore list) strips that
// prefix first. The prefix is made and taken apart here only, so the reader
// and its users cannot drift apart.
package fspath

import (
	"strconv"
	"strings"
)

// Partition is the directory under which the filesystem of partition n of
// a disk is shown: "/part2".
func Partition(n int) string { return "/part" + strconv.Itoa(n) }

// InPartition returns p without its first component when that is /partN (N
// decimal digits), and whether it was: "/part1/etc/machine-id" is
// "/etc/machine-id" of the filesystem of partition 1.
func InPartition(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/part")
	if !ok {
		return "", false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i == len(rest) || rest[i] != '/' {
		return "", false
	}
	return rest[i:], true
}
