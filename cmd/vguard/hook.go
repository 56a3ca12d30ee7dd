package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/libvirt"
	"github.com/vguard-dev/vguard/internal/load"
)

func newLibvirtHookCmd(g *globalOptions) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "libvirt-hook DOMAIN OPERATION SUB-OPERATION [EXTRA]",
		Short: "Veto bad changes in libvirt: run as the qemu hook (/etc/libvirt/hooks/qemu)",
		Long: `Judge a domain as libvirt is about to run it on this host, and refuse it when
the change it makes to the last synced estate is denied by policy, or (on a
start, restore or attach) when the domain would run with a finding at or
above change.blockAt, introduced or already in the estate.

libvirt runs /etc/libvirt/hooks/qemu with DOMAIN OPERATION SUB-OPERATION
EXTRA and the domain XML on stdin. On "prepare begin" (start), "migrate
begin" (incoming migration, on the destination), "restore begin" and
"attach begin" the domain becomes a Change against the estate: create (a
VM the estate does not know), migrate (it ran on another host),
detach-nic/attach-nic (NICs added, removed or moved), update (security
attributes and labels in its <metadata>, resources). A denied
change exits non-zero with the reasons on stderr, which libvirt shows the
operator; every other event exits 0 at once. Nothing is ever printed on
stdout (libvirt would take it as a rewritten domain XML), and the hook never
calls back into libvirt.

Configuration (` + libvirt.DefaultHookConfig + `, or the file in
$VGUARD_HOOK_CONFIG, or --config):

  estate: [/var/lib/vguard/estate.yaml]
  hypervisor: hv-a      # this host's name in the estate, as sync wrote it (default:
                        # the first of its host name, short name, FQDN and
                        # addresses that the estate knows)
  onError: closed       # closed: refuse when the estate cannot be read; open: allow
  stateDir: /run/vguard/hook  # markers tying an incoming migration to its prepare
  remote:               # optional: let vguard serve judge, and audit, each change
    url: https://vguard.example.com:8443
    tokenFile: /etc/vguard/hook.token   # an operator token; or token:
    cacert: /etc/vguard/ca.pem
    timeout: 5s         # per request; an unreachable server is handled by onError

With remote:, the change built from the local estate is posted to the
server's /api/v1/judge, and for a start the server's open findings of the
VM at or above its blockAt are refused as well.

On the destination of a migration libvirt runs "migrate begin" and then
"prepare begin". An allowed migrate leaves a marker in stateDir (by domain
UUID, bound to the NICs, metadata and resources it was judged on, good for
10 s), and a prepare of the same domain XML is then judged like the
migration, on the findings it introduces only; a start is judged on every
finding the domain carries.

Install (docs/connectors.md):

  install -D -m 0755 /dev/stdin /etc/libvirt/hooks/qemu <<'HOOK'
  #!/bin/sh
  exec /usr/local/bin/vguard libvirt-hook -- "$@"
  HOOK
  systemctl restart libvirtd   # libvirt looks for new hook files at start`,
		Args: cobra.ArbitraryArgs, // checked against libvirt's protocol below
		// A domain may be named -x: libvirt's arguments are never flags.
		// Only a leading --config (and --help) are read, by hookFlags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, rest, help, err := hookFlags(args)
			if err != nil {
				return usagef("vguard libvirt-hook", "%v", err)
			}
			if help {
				return cmd.Help()
			}
			if path != "" {
				configPath = path
			}
			return runLibvirtHook(g, configPath, rest)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "hook configuration `FILE` (default $VGUARD_HOOK_CONFIG or "+libvirt.DefaultHookConfig+")")
	return cmd
}

// hookFlags reads the options that may come before libvirt's arguments:
// --config FILE (or --config=FILE), --help, and "--", which ends them.
// Anything else, a domain named -x included, is libvirt's.
func hookFlags(args []string) (config string, rest []string, help bool, err error) {
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--":
			return config, args[1:], false, nil
		case a == "--help" || a == "-h":
			return config, nil, true, nil
		case a == "--config":
			if len(args) < 2 {
				return "", nil, false, errors.New("--config needs a FILE")
			}
			config, args = args[1], args[2:]
		case strings.HasPrefix(a, "--config="):
			config, args = strings.TrimPrefix(a, "--config="), args[1:]
		default:
			return config, args, false, nil
		}
	}
	return config, args, false, nil
}

// runLibvirtHook judges one hook event. Exit codes: 0 allowed (or not an
// event vguard judges), 1 refused by policy, 2 could not judge and failing
// closed.
func runLibvirtHook(g *globalOptions, configPath string, args []string) error {
	ev, err := libvirt.ParseHookArgs(args)
	if err != nil {
		return usagef("vguard libvirt-hook", "%v", err)
	}
	if !ev.Judged() {
		return nil // libvirt may send stdin; it is not read
	}
	if configPath == "" {
		configPath = os.Getenv("VGUARD_HOOK_CONFIG")
	}
	if configPath == "" {
		configPath = libvirt.DefaultHookConfig
	}
	what := fmt.Sprintf("%s of domain %q", ev.Op, ev.Domain)
	cfg, err := libvirt.LoadHookConfig(configPath)
	if err != nil {
		// Without its configuration the hook cannot know whether to fail
		// open, so it fails closed.
		return hookCannotJudge(g, nil, what, fmt.Errorf("reading the hook configuration: %w", err))
	}
	domXML, err := io.ReadAll(io.LimitReader(g.stdin, 64<<20))
	if err != nil {
		return hookCannotJudge(g, cfg, what, fmt.Errorf("reading the domain XML on stdin: %w", err))
	}
	res, err := load.Paths(cfg.Estate, loadOptions())
	if err != nil {
		return hookCannotJudge(g, cfg, what, fmt.Errorf("reading the estate %s: %w", strings.Join(cfg.Estate, ", "), err))
	}
	x := estate.NewIndex(res.Estate)
	if err := cfg.Resolve(x); err != nil {
		return hookCannotJudge(g, cfg, what, err)
	}
	chg, vmName, err := libvirt.HookChange(x, cfg.Hypervisor, string(domXML))
	if err != nil {
		return hookCannotJudge(g, cfg, what, err)
	}
	// On the destination of a live migration libvirt runs "migrate begin"
	// and then the start hooks, "prepare begin" first. That prepare is
	// the migration arriving, not a start: it is judged like the migrate,
	// which left a marker when it was allowed.
	arrives := ev.Arrives()
	if ev.Op == "prepare" {
		if incoming := consumeIncoming(g, cfg, string(domXML), ev.Domain); incoming {
			arrives = false
			what += " (incoming migration)"
		}
	}
	allowed := func() error {
		if ev.Op == "migrate" {
			recordIncoming(g, cfg, string(domXML), ev.Domain)
		}
		return nil
	}
	if len(chg.Operations) == 0 && !arrives {
		return allowed()
	}
	if cfg.Remote != nil {
		if err := judgeRemote(g, cfg, what, chg, vmName, arrives, res.Policy.Change.BlockAt); err != nil {
			return err
		}
		return allowed()
	}
	judge, err := change.NewJudge(x, res.Policy, check.NewDiskFiles())
	if err != nil {
		return hookCannotJudge(g, cfg, what, err)
	}
	v := &change.Verdict{Decision: change.Allow}
	if len(chg.Operations) > 0 {
		v, err = judge.Judge(chg)
		if err != nil {
			var lerrs load.Errors
			if errors.As(err, &lerrs) {
				err = fmt.Errorf("the estate cannot take this change (sync again?): %w", err)
			}
			return hookCannotJudge(g, cfg, what, err)
		}
	}
	blockAt := res.Policy.Change.BlockAt
	describe := libvirt.Describe(chg)
	if describe == "" {
		describe = "no change to the estate"
	}
	if arrives {
		// A domain that starts is judged as if it arrived: sync and watch
		// list stopped domains, so its violations may be in the estate
		// already and would not count as introduced.
		if carried := libvirt.CarriedFindings(judge.Before(), v, vmName, blockAt); len(carried) > 0 {
			return refusal(fmt.Sprintf("vguard: refused %s on %s (%s): the domain would run with findings at or above %s:", what, cfg.Hypervisor, describe, blockAt), carried)
		}
	}
	if err := hookVerdict(g, v.Decision, v.Introduced, v.Worsened, blockAt, what, cfg.Hypervisor,
		fmt.Sprintf("vguard: refused %s on %s (%s): it introduces or makes worse findings at or above %s:", what, cfg.Hypervisor, describe, blockAt)); err != nil {
		return err
	}
	return allowed()
}

// refusal is the hook's refusal: head, then a line per finding.
func refusal(head string, fs []check.Finding) error {
	var b strings.Builder
	b.WriteString(head)
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s %s %s: %s", f.Check, f.Severity, f.Subject, f.Message)
	}
	return &verdictError{msg: b.String()}
}

// hookVerdict answers a judged change the same way whether the hook judged
// it or vguard serve did: a deny is a refusal (head, then the introduced
// and worsened findings at or above blockAt); a warn prints each finding
// on stderr, which libvirt logs; an allow is nil.
func hookVerdict(g *globalOptions, d change.Decision, introduced, worsened []check.Finding, blockAt estate.Severity, what, hv, head string) error {
	switch d {
	case change.Deny:
		var blocking []check.Finding
		for _, f := range introduced {
			if f.Severity >= blockAt {
				blocking = append(blocking, f)
			}
		}
		for _, f := range worsened {
			if f.Severity >= blockAt {
				f.Subject += " (made worse)"
				blocking = append(blocking, f)
			}
		}
		return refusal(head, blocking)
	case change.Warn:
		for _, f := range introduced {
			fmt.Fprintf(g.stderr, "vguard: warning: %s on %s introduces %s %s %s: %s\n", what, hv, f.Check, f.Severity, f.Subject, f.Message)
		}
		for _, f := range worsened {
			fmt.Fprintf(g.stderr, "vguard: warning: %s on %s makes worse %s %s %s: %s\n", what, hv, f.Check, f.Severity, f.Subject, f.Message)
		}
	}
	return nil
}

// recordIncoming leaves the marker by which the "prepare begin" that
// follows an allowed "migrate begin" knows it is that migration. The
// migration itself is allowed either way; without the marker its prepare
// is judged as a start, which the message says so that an operator whose
// migration is then refused knows why.
func recordIncoming(g *globalOptions, cfg *libvirt.HookConfig, domXML, domain string) {
	uuid, err := libvirt.DomainUUID(domXML)
	var digest string
	if err == nil {
		digest, err = libvirt.DomainDigest(domXML)
	}
	if err == nil {
		err = cfg.Incoming().Record(uuid, domain, digest)
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "vguard: migrate of domain %q allowed, but no incoming-migration marker was written (%v): the prepare that follows will be judged as a start\n", domain, err)
	}
}

// consumeIncoming reports whether a "prepare begin" is the one that
// follows an allowed incoming migration of the domain: a marker of the
// same domain, left moments ago by a migrate judged on the same XML. The
// hook cannot tell an operator's start from it otherwise (after an
// offline migration, which has no prepare, say), so a marker binds what
// was judged and lives only as long as a migration takes to get there.
func consumeIncoming(g *globalOptions, cfg *libvirt.HookConfig, domXML, domain string) bool {
	uuid, err := libvirt.DomainUUID(domXML)
	if err != nil {
		return false // no marker can have been written for it
	}
	digest, err := libvirt.DomainDigest(domXML)
	if err != nil {
		return false // nor for a domain XML that does not map
	}
	incoming, err := cfg.Incoming().Consume(uuid, domain, digest)
	if err != nil {
		fmt.Fprintf(g.stderr, "vguard: incoming-migration marker of domain %q not used (%v): judged as a start\n", domain, err)
	}
	return incoming
}

// hookCannotJudge fails closed (exit 2, the reason on stderr) or, when
// configured, open (exit 0, the reason still on stderr for the log).
func hookCannotJudge(g *globalOptions, cfg *libvirt.HookConfig, what string, err error) error {
	if cfg != nil && cfg.FailOpen {
		fmt.Fprintf(g.stderr, "vguard: cannot judge %s, allowed (onError: open): %v\n", what, err)
		return nil
	}
	return &inputError{errs: []error{fmt.Errorf("vguard: cannot judge %s, refused (onError: closed): %w", what, err)}}
}
