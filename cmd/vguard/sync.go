package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/libvirt"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/vsphere"
)

type syncOptions struct {
	overlays []string
	output   string
	timeout  time.Duration
}

func newSyncCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync libvirt|vsphere ...",
		Short: "Read an estate from libvirt or vSphere and write it as Estate and Policy documents",
		Long: `Read the facts of an estate from the platform that runs it (hypervisors, VMs
with their NICs, networks; for vSphere also DRS rules), lay an overlay of
ordinary Estate and Policy documents over them for what the platform cannot
know (zones and their exposure, datastores, services, policy), and write the
result as documents every other command reads. See docs/connectors.md.

The output is checked by loading it back before it is written, and written
through a temporary file and a rename: a failed sync never leaves a partial
estate behind.`,
	}
	cmd.AddCommand(newSyncLibvirtCmd(g), newSyncVSphereCmd(g))
	return cmd
}

func addSyncFlags(cmd *cobra.Command, o *syncOptions) {
	f := cmd.Flags()
	f.StringArrayVar(&o.overlays, "overlay", nil, "Estate/Policy documents (`PATH`: file or directory) laid over what the platform reports; repeatable")
	f.StringVarP(&o.output, "output", "o", "", "write the documents to `FILE` (default stdout)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up when the platform does not answer the connection or a request within this long")
}

func newSyncLibvirtCmd(g *globalOptions) *cobra.Command {
	o := &syncOptions{}
	var uris []string
	cmd := &cobra.Command{
		Use:   "libvirt --uri URI [--uri URI...] [--overlay PATH...] [-o FILE]",
		Short: "Read hypervisors through libvirtd, one per --uri",
		Long: `Read one hypervisor per --uri through libvirtd's RPC protocol: its capacity,
networks and domains (NICs, UUID, memory, vCPUs, cputune/memtune limits).
Security attributes come from each domain's and network's <metadata>
element in namespace https://vguard.dev/xmlns/libvirt/v1 (docs/connectors.md).

A hypervisor is named after the URI's host, or the host name libvirtd
reports; --uri NAME=URI names it explicitly.`,
		Example: `  vguard sync libvirt --uri qemu+ssh://root@hv-a/system --uri qemu+ssh://root@hv-b/system \
      --overlay overlay/ -o estate.yaml
  vguard sync libvirt --uri hv-local=qemu:///system -o estate.yaml && vguard check estate.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := libvirtTargets(cmd.CommandPath(), uris)
			if err != nil {
				return err
			}
			return runSync(cmd.Context(), g, o, func(ctx context.Context) (*connector.Inventory, error) {
				return libvirt.SyncTimeout(ctx, targets, o.timeout)
			})
		},
	}
	cmd.Flags().StringArrayVar(&uris, "uri", nil, "libvirt `URI` of one hypervisor, optionally NAME=URI; repeatable")
	addSyncFlags(cmd, o)
	return cmd
}

// runSync reads the platform, merges the overlay and writes the documents.
func runSync(ctx context.Context, g *globalOptions, o *syncOptions, read func(context.Context) (*connector.Inventory, error)) error {
	inv, err := read(ctx)
	if err != nil {
		return &inputError{errs: []error{fmt.Errorf("sync: %w", err)}}
	}
	out, err := connector.Build(inv, o.overlays, o.output)
	if err != nil {
		var invalid *connector.InvalidError
		if errors.As(err, &invalid) {
			errs := []error{errors.New("vguard: the merged estate would not load, so nothing was written:")}
			for _, e := range invalid.Errs {
				errs = append(errs, e)
			}
			return &inputError{errs: errs}
		}
		var lerrs load.Errors
		if errors.As(err, &lerrs) {
			// Overlay errors: the file:line messages, then what it means
			// for a sync (main's trailer would say "nothing was checked").
			errs := make([]error, 0, len(lerrs)+1)
			for _, e := range lerrs {
				errs = append(errs, e)
			}
			errs = append(errs, fmt.Errorf("vguard: %d problem%s in the overlay; nothing was written", len(lerrs), plural(len(lerrs))))
			return &inputError{errs: errs}
		}
		return err
	}
	for _, w := range out.Warnings {
		fmt.Fprintf(g.stderr, "vguard: warning: %s\n", w)
	}
	st := out.Result.Estate
	if o.output == "" || o.output == "-" {
		if _, err := g.stdout.Write(out.Data); err != nil {
			return fmt.Errorf("writing the output: %w", err)
		}
	} else if err := connector.WriteFile(o.output, out.Data); err != nil {
		return &inputError{errs: []error{fmt.Errorf("writing %s: %w", o.output, err)}}
	}
	fmt.Fprintf(g.stderr, "vguard: synced %d hypervisor%s, %d VM%s, %d network%s from %s\n",
		len(st.Hypervisors), plural(len(st.Hypervisors)), len(st.VMs), plural(len(st.VMs)),
		len(st.Networks), plural(len(st.Networks)), inv.Source)
	return nil
}

func newSyncVSphereCmd(g *globalOptions) *cobra.Command {
	o := &syncOptions{}
	var rawURL, passwordFile string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "vsphere --url https://USER:PASS@HOST/sdk [--insecure] [--overlay PATH...] [-o FILE]",
		Short: "Read clusters, hosts, VMs, port groups and DRS rules from vCenter",
		Long: `Read the inventory from vCenter in a few bulk requests: clusters and hosts
(failure domain from the vguard.failureDomain tag or custom attribute), VMs
with their host, NICs (MAC, port group), BIOS UUID, guest host name, CPU and
memory and whether a limit is set, standard and distributed port groups with
VLAN IDs (zone from vguard.zone), and DRS rules as Policy separate and
placement rules. VM security attributes come from tags or custom attributes
in the categories vguard.owner, vguard.app, vguard.environment,
vguard.securityLevel, vguard.homeZone and vguard.gateway.

The password in --url is never printed, in output, warnings or errors. The
VGUARD_VSPHERE_URL environment variable may hold the URL instead of --url,
which keeps it out of the process list; or the URL names only the user and
the password comes from --password-file or VGUARD_VSPHERE_PASSWORD.
Percent-encode special characters of USER and PASS in the URL (@ → %40).`,
		Example: `  VGUARD_VSPHERE_URL='https://svc-vguard:...@vcenter.example.com/sdk' \
    vguard sync vsphere --overlay overlay/ -o estate.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ep, err := vsphereEndpoint(rawURL, insecure, passwordFile)
			if err != nil {
				return usagef(cmd.CommandPath(), "%v", err)
			}
			return runSync(cmd.Context(), g, o, func(ctx context.Context) (*connector.Inventory, error) {
				ep.Timeout = o.timeout
				return vsphere.Sync(ctx, ep)
			})
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", "", "vCenter SDK `URL` with credentials, https://USER:PASS@HOST/sdk")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "accept any TLS certificate (a self-signed vCenter)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from `FILE` (first line), for a --url without one; or set VGUARD_VSPHERE_PASSWORD")
	addSyncFlags(cmd, o)
	return cmd
}

// vsphereEndpoint reads --url (or VGUARD_VSPHERE_URL) and the password:
// in the URL, or from --password-file (first line) or
// VGUARD_VSPHERE_PASSWORD, which keep it out of the URL (a systemd unit's
// credential file, say).
func vsphereEndpoint(rawURL string, insecure bool, passwordFile string) (*vsphere.Endpoint, error) {
	if rawURL == "" {
		rawURL = os.Getenv("VGUARD_VSPHERE_URL")
	}
	if rawURL == "" {
		return nil, errors.New("give --url https://USER:PASS@HOST/sdk (or set VGUARD_VSPHERE_URL)")
	}
	ep, err := vsphere.ParseEndpoint(rawURL, insecure)
	if err != nil {
		return nil, err
	}
	switch {
	case passwordFile != "":
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if err := ep.SetPassword(strings.TrimSuffix(line, "\r")); err != nil {
			return nil, err
		}
	case os.Getenv("VGUARD_VSPHERE_PASSWORD") != "":
		if err := ep.SetPassword(os.Getenv("VGUARD_VSPHERE_PASSWORD")); err != nil {
			return nil, fmt.Errorf("VGUARD_VSPHERE_PASSWORD: %w", err)
		}
	}
	return ep, nil
}

// libvirtTargets parses the --uri flags of sync libvirt and watch libvirt.
func libvirtTargets(cmdPath string, uris []string) ([]libvirt.Target, error) {
	var targets []libvirt.Target
	for _, u := range uris {
		t, err := libvirt.ParseTarget(u)
		if err != nil {
			return nil, usagef(cmdPath, "%v", err)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, usagef(cmdPath, "give at least one --uri")
	}
	return targets, nil
}
