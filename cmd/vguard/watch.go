package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/libvirt"
	"github.com/vguard-dev/vguard/internal/vsphere"
)

type watchOptions struct {
	overlays []string
	output   string
	webhook  string
	debounce time.Duration
	timeout  time.Duration
	warn     func(string) // set by runWatch before the platform's watch starts
}

func newWatchCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch libvirt|vsphere ...",
		Short: "Follow the platform's change feed and print each finding as it appears or is resolved",
		Long: `Read the estate as sync does, then follow the platform's own change feed
(vSphere: property collector updates; libvirt: domain lifecycle, device and
metadata events), judge the estate again after each change, and print each
finding as one JSON line on stdout:

  {"time":"...","event":"present|appeared|resolved","finding":{"check":"VG101",...}}

"present" lines are the findings of the estate when the watch starts. With
--webhook each line is also POSTed to the URL; with -o the estate file is
rewritten (atomically) after each change, so that the libvirt hook and
other commands read the current one. Stops on SIGINT or SIGTERM.`,
	}
	cmd.AddCommand(newWatchLibvirtCmd(g), newWatchVSphereCmd(g))
	return cmd
}

func addWatchFlags(cmd *cobra.Command, o *watchOptions) {
	f := cmd.Flags()
	f.StringArrayVar(&o.overlays, "overlay", nil, "Estate/Policy documents (`PATH`: file or directory) laid over what the platform reports; repeatable")
	f.StringVarP(&o.output, "output", "o", "", "keep the estate documents in `FILE`, rewritten after each change")
	f.StringVar(&o.webhook, "webhook", "", "POST each event as JSON to `URL`")
	f.DurationVar(&o.debounce, "debounce", 200*time.Millisecond, "wait this long after a change for the rest of one operation's changes")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up when the platform does not answer the connection or a request within this long (the change feed itself waits as long as it must)")
}

func newWatchLibvirtCmd(g *globalOptions) *cobra.Command {
	o := &watchOptions{}
	var uris []string
	cmd := &cobra.Command{
		Use:     "libvirt --uri URI [--uri URI...] [--overlay PATH...] [-o FILE] [--webhook URL]",
		Short:   "Watch hypervisors through libvirtd's domain events",
		Example: `  vguard watch libvirt --uri qemu+ssh://root@hv-a/system --overlay overlay/ -o /var/lib/vguard/estate.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			targets, err := libvirtTargets(cmd.CommandPath(), uris)
			if err != nil {
				return err
			}
			return runWatch(cmd.Context(), g, o, cmd.CommandPath(), func(ctx context.Context, update func(*connector.Inventory) error) error {
				return libvirt.WatchWith(ctx, targets, libvirt.WatchOptions{Debounce: o.debounce, Warn: o.warn, Timeout: o.timeout}, update)
			})
		},
	}
	cmd.Flags().StringArrayVar(&uris, "uri", nil, "libvirt `URI` of one hypervisor, optionally NAME=URI; repeatable")
	addWatchFlags(cmd, o)
	return cmd
}

func newWatchVSphereCmd(g *globalOptions) *cobra.Command {
	o := &watchOptions{}
	var rawURL, passwordFile string
	var insecure bool
	cmd := &cobra.Command{
		Use:     "vsphere --url https://USER:PASS@HOST/sdk [--insecure] [--overlay PATH...] [-o FILE] [--webhook URL]",
		Short:   "Watch vCenter through the property collector",
		Example: `  VGUARD_VSPHERE_URL='https://...' vguard watch vsphere --overlay overlay/ --webhook https://alerts.example.com/vguard`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ep, err := vsphereEndpoint(rawURL, insecure, passwordFile)
			if err != nil {
				return usagef(cmd.CommandPath(), "%v", err)
			}
			return runWatch(cmd.Context(), g, o, cmd.CommandPath(), func(ctx context.Context, update func(*connector.Inventory) error) error {
				ep.Timeout = o.timeout
				return vsphere.WatchWith(ctx, ep, vsphere.WatchOptions{Debounce: o.debounce, Warn: o.warn}, update)
			})
		},
	}
	cmd.Flags().StringVar(&rawURL, "url", "", "vCenter SDK `URL` with credentials, https://USER:PASS@HOST/sdk")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "accept any TLS certificate (a self-signed vCenter)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from `FILE` (first line), for a --url without one; or set VGUARD_VSPHERE_PASSWORD")
	addWatchFlags(cmd, o)
	return cmd
}

// runWatch runs a platform's watch loop until a signal, printing events.
func runWatch(ctx context.Context, g *globalOptions, o *watchOptions, cmdPath string,
	watch func(context.Context, func(*connector.Inventory) error) error) error {
	if o.debounce < 0 || o.debounce > time.Minute {
		return usagef(cmdPath, "--debounce must be between 0 and 1m")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	warn := func(m string) { fmt.Fprintf(g.stderr, "vguard: warning: %s\n", m) }
	o.warn = warn
	emit := connector.JSONLines(g.stdout)
	if o.webhook != "" {
		hook, err := connector.NewWebhook(o.webhook, warn)
		if err != nil {
			return usagef(cmdPath, "%v", err)
		}
		defer hook.Close()
		lines := emit
		emit = func(ev connector.Event) error {
			if err := lines(ev); err != nil {
				return err
			}
			return hook.Post(ev)
		}
	}
	// After the first estate, one bad value (an overlay edit, a platform
	// attribute outside the vocabulary) is a warning: the last good estate
	// stays, and the next change is judged. Ending the watch would only
	// make a service manager restart it into the same error.
	w := &connector.Watcher{Overlays: o.overlays, Output: o.output, Emit: emit, Warn: warn,
		OnInvalid: func(err error) { warn(fmt.Sprintf("%v\nkept the last good estate until the next change", err)) }}
	err := watch(ctx, w.Update)
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	var invalid *connector.InvalidError
	if errors.As(err, &invalid) {
		errs := []error{errors.New("vguard: watch: the merged estate would not load:")}
		for _, e := range invalid.Errs {
			errs = append(errs, e)
		}
		return &inputError{errs: errs}
	}
	return &inputError{errs: []error{fmt.Errorf("vguard: watch: %w", err)}}
}
