package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/hygiene"
	"github.com/vguard-dev/vguard/internal/identity"
	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/progress"
	"github.com/vguard-dev/vguard/internal/report"
	"github.com/vguard-dev/vguard/internal/scanreport"
	"github.com/vguard-dev/vguard/internal/secrets"
)

// hygieneOptions are the flags image scan and image sanitize share.
type hygieneOptions struct {
	format string
	output string
	rules  []string
	quiet  bool
	// keyFile holds the key of the secrets' fingerprints.
	keyFile string
	// sarifRules describe the rules in force, for a SARIF driver.
	sarifRules []report.ScanRule
	// allowBacking lets a qcow2 image's backing file be read.
	allowBacking bool
}

func (o *hygieneOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.format, "format", "table", "report format: `table`, json (or, for scan, sarif)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of stdout")
	cmd.Flags().StringArrayVar(&o.rules, "rules", nil, "add the secret rules of `FILE` (gitleaks TOML format; a rule with the id of a built-in one replaces it); repeatable")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "show no progress bar on stderr")
	registerAllowBacking(cmd, &o.allowBacking)
	cmd.Flags().StringVar(&o.keyFile, "fingerprint-key", "", "key the secrets' fingerprints with the contents of `FILE` (at least 16 bytes), so one secret has one fingerprint in every report made with it; by default the key is random and fingerprints compare within one report only")
}

// fingerprintKey reads --fingerprint-key: the file's bytes, less one
// trailing newline (a key written with echo). Nil without the flag.
func (o *hygieneOptions) fingerprintKey() ([]byte, error) {
	if o.keyFile == "" {
		return nil, nil
	}
	key, err := os.ReadFile(o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--fingerprint-key %s: %w", o.keyFile, unwrapPath(err))
	}
	key = bytes.TrimSuffix(bytes.TrimSuffix(key, []byte("\n")), []byte("\r"))
	if len(key) < secrets.MinKeyLen {
		// The length only: the key is as secret as what it fingerprints.
		return nil, fmt.Errorf("--fingerprint-key %s: a key needs at least %d bytes, the file has %d (make one with: head -c 32 /dev/urandom >%s)",
			o.keyFile, secrets.MinKeyLen, len(key), o.keyFile)
	}
	return key, nil
}

// scanner builds the hygiene scanner from the built-in secret rules and the
// user's rule files.
func (o *hygieneOptions) scanner(cmdPath string) (*hygiene.Scanner, error) {
	if o.format != "table" && o.format != "json" && (o.format != "sarif" || !strings.HasSuffix(cmdPath, " scan")) {
		want := "table or json"
		if strings.HasSuffix(cmdPath, " scan") {
			want = "table, json or sarif"
		}
		return nil, usagef(cmdPath, "--format %q: want %s", o.format, want)
	}
	rules := secrets.Builtin()
	o.sarifRules = nil
	var errs []error
	for _, path := range o.rules {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("--rules %s: %w", path, unwrapPath(err)))
			continue
		}
		extra, err := secrets.LoadGitleaks(path, data)
		if err != nil {
			// Every problem of the file, one per line; nothing is scanned
			// with a rule set the user did not mean.
			for _, e := range unjoin(err) {
				errs = append(errs, e)
			}
			continue
		}
		rules = secrets.Merge(rules, extra)
	}
	key, err := o.fingerprintKey()
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, &inputError{errs: errs}
	}
	s, err := hygiene.NewScanner(rules, key)
	if err != nil {
		return nil, &inputError{errs: []error{err}}
	}
	for _, r := range rules {
		o.sarifRules = append(o.sarifRules, report.ScanRule{ID: r.ID, Description: r.Description, Secret: true})
	}
	for _, r := range identity.Rules() {
		o.sarifRules = append(o.sarifRules, report.ScanRule{ID: r.ID, Description: r.Description})
	}
	return s, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// openImage opens an image of any format; errors are the input's fault.
func openImage(path string, allowBacking bool) (imagefs.Image, error) {
	img, err := imagefs.Open(path, imagefs.AllowBacking(allowBacking))
	if err != nil {
		if pe, ok := err.(*os.PathError); ok && pe.Path == path {
			err = fmt.Errorf("%s: %w", path, pe.Err)
		} else if !strings.HasPrefix(err.Error(), path) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, &inputError{errs: []error{err}}
	}
	return img, nil
}

func newImageScanCmd(g *globalOptions) *cobra.Command {
	var opts hygieneOptions
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Find the secrets and the clone-identity material an image would give every clone",
		Long: `Read IMAGE and report the secrets in its files (private keys, cloud and SaaS
tokens, database URLs and DSNs with passwords, password assignments, .pgpass,
.netrc, kubeconfig and Docker credentials, usable /etc/shadow hashes,
Kerberos keytabs, passwords in shell histories, ...; docs/secrets.md lists
every rule) and its clone-identity material (machine ID, SSH host keys, MAC
pins, DHCP leases, hostname, random seed, cloud-init state, ...;
docs/identity.md). A secret's value is never shown: the report gives a few
characters at each end and a keyed fingerprint (HMAC-SHA256 under a key
random per run, so fingerprints are comparable across reports only when
each is made with the same --fingerprint-key).

Exit 1 when anything is found, 0 when the image is clean.

` + imageFormatsHelp,
		Example: `  vguard image scan hr-app.qcow2
  vguard image scan --format json -o scans/hr-app.json hr-app.qcow2
  vguard image scan --rules .gitleaks.toml rootfs.tar.zst`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageScan(g, cmd.CommandPath(), args[0], opts)
		},
	}
	opts.register(cmd)
	return cmd
}

func runImageScan(g *globalOptions, cmdPath, path string, opts hygieneOptions) error {
	s, err := opts.scanner(cmdPath)
	if err != nil {
		return err
	}
	img, err := openImage(path, opts.allowBacking)
	if err != nil {
		return err
	}
	defer img.Close()
	bar := progress.New(g.stderr, progress.Enabled(g.stderr, opts.quiet), "scan "+filepath.Base(path))
	res, err := s.Scan(img, bar)
	bar.Done()
	if err != nil {
		// Errors of the image's reader already start with its path.
		if !strings.HasPrefix(err.Error(), path+":") {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return &inputError{errs: []error{err}}
	}
	rep := res.Report(path)
	err = g.writeOutput(opts.output, func(w io.Writer) error {
		switch opts.format {
		case "json":
			return writeJSON(w, rep)
		case "sarif":
			return report.WriteScanSARIF(w, rep, opts.sarifRules, "")
		}
		writeScanTable(w, rep)
		return nil
	})
	if err != nil {
		return err
	}
	if n := rep.Summary.Secrets + rep.Summary.Identity; n > 0 {
		return &verdictError{msg: fmt.Sprintf("vguard: %s carries %d secret%s and %d piece%s of clone identity",
			path, rep.Summary.Secrets, plural(rep.Summary.Secrets), rep.Summary.Identity, plural(rep.Summary.Identity))}
	}
	return nil
}

func writeScanTable(w io.Writer, rep *scanreport.Report) {
	fmt.Fprintf(w, "%s (%s): %d files, %s read\n", rep.Image, rep.Format, rep.Summary.Files, progress.Bytes(rep.Summary.Bytes))
	if len(rep.Secrets) > 0 {
		fmt.Fprintf(w, "\nSecrets (%d):\n", len(rep.Secrets))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tPATH:LINE\tVALUE\tFINGERPRINT")
		for _, s := range rep.Secrets {
			fmt.Fprintf(tw, "  %s\t%s:%d\t%s\t%s\n", s.Rule, s.Path, s.Line, s.Redacted, shortFingerprint(s.Fingerprint))
		}
		tw.Flush()
	}
	if len(rep.Identity) > 0 {
		fmt.Fprintf(w, "\nClone identity (%d):\n", len(rep.Identity))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tPATH")
		for _, i := range rep.Identity {
			fmt.Fprintf(tw, "  %s\t%s\n", i.Kind, i.Path)
		}
		tw.Flush()
	}
	if len(rep.Secrets)+len(rep.Identity) == 0 {
		fmt.Fprintln(w, "\nNo secrets and no clone identity found.")
	} else {
		fmt.Fprintln(w, "\n`vguard image sanitize` writes a copy without them.")
	}
}

// shortFingerprint keeps enough of a fingerprint to tell secrets apart in
// a table; the JSON report has it whole.
func shortFingerprint(f string) string {
	if len(f) > len("sha256:")+12 {
		return f[:len("sha256:")+12]
	}
	return f
}

func newImageSanitizeCmd(g *globalOptions) *cobra.Command {
	var opts hygieneOptions
	var removeFiles bool
	cmd := &cobra.Command{
		Use:   "sanitize IMAGE OUT",
		Short: "Write a copy of an image without clone identity and secrets, and prove it clean",
		Long: `Write a copy of IMAGE to OUT: a directory (new or empty), or a tar archive when
OUT ends in .tar, .tar.gz, .tgz or .tar.zst. In the copy, clone-identity
material is reset the way a sealed template expects (/etc/machine-id emptied,
not deleted; SSH host keys, DHCP leases and the random seed removed; MAC pins
taken out of network configuration; the hostname set to localhost), and each
secret's value is replaced in place by ` + hygiene.Marker + ` (by base64 of it
where the value is base64: a Docker auth, a kubeconfig's key data), so that
configuration files stay parseable and their tools still load them (or, with
--remove-secret-files, the files holding secrets are left out). Owners, modes and times are kept.

The report lists every action. Then OUT is scanned again with the same rules:
exit 0 when the copy is clean, 1 (listing what remains) when it is not.

` + imageFormatsHelp,
		Example: `  vguard image sanitize hr-app.qcow2 template.tar.zst
  vguard image sanitize --remove-secret-files rootfs/ sealed/`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageSanitize(g, cmd.CommandPath(), args[0], args[1], opts, removeFiles)
		},
	}
	opts.register(cmd)
	cmd.Flags().BoolVar(&removeFiles, "remove-secret-files", false, "leave files holding secrets out of the copy instead of redacting their values")
	return cmd
}

func runImageSanitize(g *globalOptions, cmdPath, path, out string, opts hygieneOptions, removeFiles bool) error {
	s, err := opts.scanner(cmdPath)
	if err != nil {
		return err
	}
	if abs, _ := filepath.Abs(path); abs != "" {
		if o, _ := filepath.Abs(out); o == abs || strings.HasPrefix(o, abs+string(filepath.Separator)) {
			return usagef(cmdPath, "OUT %s is inside IMAGE %s: the copy would be read while it is written", out, path)
		}
	}
	img, err := openImage(path, opts.allowBacking)
	if err != nil {
		return err
	}
	defer img.Close()
	bar := progress.New(g.stderr, progress.Enabled(g.stderr, opts.quiet), "sanitize "+filepath.Base(path))
	rep, err := s.Sanitize(img, path, out, hygiene.SanitizeOptions{RemoveSecretFiles: removeFiles, Progress: bar})
	bar.Done()
	if err != nil && !errors.Is(err, hygiene.ErrNotClean) {
		return &inputError{errs: []error{err}}
	}
	werr := g.writeOutput(opts.output, func(w io.Writer) error {
		if opts.format == "json" {
			return writeJSON(w, rep)
		}
		writeSanitizeTable(w, rep)
		return nil
	})
	if werr != nil {
		return werr
	}
	if err != nil {
		return &verdictError{msg: "vguard: " + err.Error()}
	}
	return nil
}

func writeSanitizeTable(w io.Writer, rep *hygiene.SanitizeReport) {
	fmt.Fprintf(w, "%s -> %s (%s): %d action%s\n", rep.Image, rep.Output, rep.Format, len(rep.Actions), plural(len(rep.Actions)))
	if len(rep.Actions) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ACTION\tPATH\tWHY")
		for _, a := range rep.Actions {
			why := a.Reason
			if a.Secrets > 0 {
				why = fmt.Sprintf("%d secret%s: %s", a.Secrets, plural(a.Secrets), a.Reason)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Action, a.Path, why)
		}
		tw.Flush()
	}
	if rep.Rescan == nil {
		return
	}
	if n := len(rep.Rescan.Secrets) + len(rep.Rescan.Identity); n > 0 {
		fmt.Fprintf(w, "\nThe re-scan of %s still finds %d item%s:\n", rep.Output, n, plural(n))
		for _, s := range rep.Rescan.Secrets {
			fmt.Fprintf(w, "  secret %s at %s:%d (%s)\n", s.Rule, s.Path, s.Line, s.Redacted)
		}
		for _, i := range rep.Rescan.Identity {
			fmt.Fprintf(w, "  identity %s at %s\n", i.Kind, i.Path)
		}
		return
	}
	fmt.Fprintf(w, "\nRe-scan of %s: clean (%d files, %s).\n", rep.Output, rep.Rescan.Summary.Files, progress.Bytes(rep.Rescan.Summary.Bytes))
}
