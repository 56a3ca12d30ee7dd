package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/progress"
	"github.com/vguard-dev/vguard/internal/tree"
)

func newImageCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Read VM images (directory, tar, raw disk, qcow2): manifests, secrets, sanitized copies",
	}
	cmd.AddCommand(newImageScanCmd(g), newImageSanitizeCmd(g), newImageManifestCmd(g))
	return cmd
}

// treeOptions are the flags of the commands that read file trees.
type treeOptions struct {
	quiet, noCache, allowBacking bool
}

func (o *treeOptions) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "show no progress bar on stderr")
	cmd.Flags().BoolVar(&o.noCache, "no-cache", false, "hash every file of a directory; neither read nor write its stat cache")
	registerAllowBacking(cmd, &o.allowBacking)
}

// registerAllowBacking adds --allow-backing to a command that opens
// images. Off by default: a backing file is read as the image's own data,
// and an uploaded qcow2 can name any file vguard can read (another VM's
// disk, a key) as its backing file (OSSN-0093, CVE-2024-32498).
func registerAllowBacking(cmd *cobra.Command, allow *bool) {
	cmd.Flags().BoolVar(allow, "allow-backing", false, "read a qcow2 image's backing files, each of which must lie in the directory of the image naming it (symlinks resolved); without it an image with a backing file is refused")
}

const imageFormatsHelp = `IMAGE is a directory holding a root filesystem; a tar archive (plain,
gzip, bzip2 or zstd, recognized by content, not by name); a raw disk image
with an ext2/3/4 filesystem on the whole disk or in MBR or GPT partitions;
or a qcow2 image (compressed clusters included; backing files only with
--allow-backing, and only inside the image's directory). A disk
with several ext2/3/4 partitions lists each under /partN, N the partition
number. Nothing is mounted and no root is needed.

For a directory, a stat cache (in the user cache directory, under
vguard/statcache) lets an unchanged tree be re-manifested without reading
its files again; a file changed within the last seconds before a run is
always read again. --no-cache turns it off.`

func newImageManifestCmd(g *globalOptions) *cobra.Command {
	var output string
	var opts treeOptions
	cmd := &cobra.Command{
		Use:   "manifest IMAGE",
		Short: "Write the file-tree manifest of an image, used to judge drift",
		Long: `Write the file-tree manifest of IMAGE (format vguard-manifest/v1: every path
with its type, mode, owner, and for files the size and SHA-256), which estates
refer to for VG203 and which 'vguard drift' compares. Files are hashed on
every core, except in a tar, which is one stream.

` + imageFormatsHelp,
		Example: `  vguard image manifest web-master-3.qcow2 -o manifests/web-master-3.json
  vguard image manifest /srv/rootfs/web-1/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := readImageTree(g, args[0], opts)
			if err != nil {
				return err
			}
			return g.writeOutput(output, m.Write)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the manifest to `FILE` instead of stdout")
	opts.register(cmd)
	return cmd
}

// readImageTree reads the manifest of an image of any format, with a
// progress bar on a terminal's stderr.
func readImageTree(g *globalOptions, path string, opts treeOptions) (*manifest.Manifest, error) {
	bar := progress.New(g.stderr, progress.Enabled(g.stderr, opts.quiet), "manifest "+filepath.Base(path))
	defer bar.Done()
	m, _, err := tree.ManifestPath(path, tree.Options{NoCache: opts.noCache, Progress: bar, AllowBacking: opts.allowBacking})
	if err != nil {
		// Errors of the image readers name the image already; those of a
		// file inside it (or of the OS) may not.
		if pe, ok := err.(*os.PathError); ok && pe.Path == path {
			err = fmt.Errorf("%s: %w", path, pe.Err)
		} else if !strings.HasPrefix(err.Error(), path+":") {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, &inputError{errs: []error{err}}
	}
	return m, nil
}

// readTree reads one side of a drift: a manifest file (JSON), or an image
// of any format, whose manifest is computed.
func readTree(g *globalOptions, path string, opts treeOptions) (*manifest.Manifest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &inputError{errs: []error{fmt.Errorf("%s: %w", path, unwrapPath(err))}}
	}
	if fi.Mode().IsRegular() && looksLikeJSON(path) {
		m, err := manifest.ReadFile(path)
		if err != nil {
			return nil, &inputError{errs: []error{err}}
		}
		return m, nil
	}
	return readImageTree(g, path, opts)
}

// looksLikeJSON reports whether a file starts (after white space) with
// '{': a manifest, since no image format does.
func looksLikeJSON(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(bufio.NewReader(f), head)
	t := bytes.TrimLeft(head[:n], " \t\r\n\ufeff")
	return len(t) > 0 && t[0] == '{'
}

// unwrapPath drops the *os.PathError wrapper, whose path the message
// already names.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func newDriftCmd(g *globalOptions) *cobra.Command {
	var format, output string
	var opts treeOptions
	cmd := &cobra.Command{
		Use:   "drift MASTER MEMBER",
		Short: "Compare a member with its master: paths added, removed and modified",
		Long: `Compare two file trees, each a manifest (vguard-manifest/v1 JSON) or an
image of any format 'vguard image manifest' reads, ignoring what changes on
every running system (the default ignore list of cli.md: logs, caches, /tmp,
/run, machine-id, SSH host keys, DHCP leases, shell histories...). Exit 0
when they match, 1 when they differ.

` + imageFormatsHelp,
		Example: `  vguard drift manifests/web-master-3.json manifests/web-1.json
  vguard drift web-master-3.qcow2 /var/lib/libvirt/images/web-1.qcow2
  vguard drift /srv/images/web-master-3/ /mnt/web-1/ --format json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usagef(cmd.CommandPath(), "--format: unknown format %q (want table or json)", format)
			}
			base, err := readTree(g, args[0], opts)
			if err != nil {
				return err
			}
			other, err := readTree(g, args[1], opts)
			if err != nil {
				return err
			}
			d := manifest.Diff(base, other)
			err = g.writeOutput(output, func(w io.Writer) error {
				if format == "json" {
					return writeJSON(w, d)
				}
				writeDriftTable(w, args[0], args[1], d)
				return nil
			})
			if err != nil {
				return err
			}
			if !d.Empty() {
				return &verdictError{msg: fmt.Sprintf("vguard: %s differs from %s in %d paths", args[1], args[0], d.Total())}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the report to `FILE` instead of stdout")
	opts.register(cmd)
	return cmd
}

func writeDriftTable(w io.Writer, master, member string, d *manifest.Drift) {
	if d.Empty() {
		fmt.Fprintf(w, "%s matches %s (outside the ignore list).\n", member, master)
		return
	}
	fmt.Fprintf(w, "%s differs from %s: %d added, %d removed, %d modified.\n\n", member, master,
		len(d.Added), len(d.Removed), len(d.Modified))
	for _, p := range d.Added {
		fmt.Fprintf(w, "  + %s\n", p)
	}
	for _, p := range d.Removed {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	for _, m := range d.Modified {
		fmt.Fprintf(w, "  ~ %s (%s)\n", m.Path, strings.Join(m.Fields, ", "))
	}
}
