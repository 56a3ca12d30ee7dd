package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/tree"
)

func newImageCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Read VM images: manifests (scan and sanitize come with the image readers)",
	}
	var output string
	manifestCmd := &cobra.Command{
		Use:   "manifest IMAGE",
		Short: "Write the file-tree manifest of an image, used to judge drift",
		Long: `Write the file-tree manifest of IMAGE (format vguard-manifest/v1: every path
with its type, mode, owner, and for files the size and SHA-256), which estates
refer to for VG203 and which 'vguard drift' compares. IMAGE is a directory
holding the image's root filesystem; disk image formats are not read yet.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := readTree(args[0], cmd.CommandPath(), false)
			if err != nil {
				return err
			}
			return g.writeOutput(output, m.Write)
		},
	}
	manifestCmd.Flags().StringVarP(&output, "output", "o", "", "write the manifest to `FILE` instead of stdout")
	cmd.AddCommand(manifestCmd)
	return cmd
}

// readTree reads a manifest: a manifest JSON file, or (a directory) the
// manifest of the tree in it. Disk images are refused clearly until their
// readers exist.
func readTree(path, cmdPath string, manifestFile bool) (*manifest.Manifest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &inputError{errs: []error{fmt.Errorf("%s: %w", path, unwrapPath(err))}}
	}
	if fi.IsDir() {
		m, err := tree.ManifestDir(path)
		if err != nil {
			return nil, &inputError{errs: []error{err}}
		}
		return m, nil
	}
	if manifestFile {
		m, err := manifest.ReadFile(path)
		if err != nil {
			return nil, &inputError{errs: []error{err}}
		}
		return m, nil
	}
	return nil, usagef(cmdPath, "%s: reading disk images (raw, qcow2, tar) is not supported yet; give the directory of the image's root filesystem", path)
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func newDriftCmd(g *globalOptions) *cobra.Command {
	var format, output string
	cmd := &cobra.Command{
		Use:   "drift MASTER MEMBER",
		Short: "Compare a member with its master: paths added, removed and modified",
		Long: `Compare two file trees, each a manifest (vguard-manifest/v1 JSON) or a
directory, ignoring what changes on every running system (the default ignore
list of cli.md: logs, caches, /tmp, /run, machine-id, SSH host keys, DHCP
leases, shell histories...). Exit 0 when they match, 1 when they differ.`,
		Example: `  vguard drift manifests/web-master-3.json manifests/web-1.json
  vguard drift /srv/images/web-master-3/ /mnt/web-1/ --format json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usagef(cmd.CommandPath(), "--format: unknown format %q (want table or json)", format)
			}
			base, err := readTree(args[0], cmd.CommandPath(), true)
			if err != nil {
				return err
			}
			other, err := readTree(args[1], cmd.CommandPath(), true)
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
