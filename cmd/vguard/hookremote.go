package main

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/libvirt"
)

// judgeRemote has the vguard serve of the hook's remote: section judge the
// change (which puts the verdict in the server's audit trail) and, for a
// domain that starts, refuses the findings at or above blockAt the server
// holds for it, as the hook does locally. A server that cannot be asked is
// an estate that cannot be read: onError decides. It returns nil when the
// change is allowed.
func judgeRemote(g *globalOptions, cfg *libvirt.HookConfig, what string, chg *change.Change, vmName string, arrives bool, localBlockAt estate.Severity) error {
	r := cfg.Remote
	o := &remoteOptions{url: r.URL, token: r.Token, cacert: r.CACert, timeout: r.Wait}
	const cmdPath = "vguard libvirt-hook"
	cannot := func(err error) error {
		return hookCannotJudge(g, cfg, what, fmt.Errorf("asking vguard serve at %s: %w", r.URL, err))
	}
	describe := libvirt.Describe(chg)
	if describe == "" {
		describe = "no change to the estate"
	}
	var v struct {
		Decision   string          `json:"decision"`
		Introduced []check.Finding `json:"introduced"`
		Resolved   []check.Finding `json:"resolved"`
		Worsened   []check.Finding `json:"worsened"`
	}
	// Without a judgement (a start that changes nothing) the server says
	// nothing of its blockAt: the local policy's is used.
	blockAt, audit := localBlockAt, ""
	if len(chg.Operations) > 0 {
		data, err := libvirt.ChangeJSON(chg)
		if err != nil {
			return cannot(err)
		}
		body, hdr, err := o.call(cmdPath, "POST", "/api/v1/judge?name=libvirt-hook.json", data)
		if err != nil {
			return cannot(err)
		}
		if err := json.Unmarshal(body, &v); err != nil || v.Decision == "" {
			return cannot(fmt.Errorf("the verdict is not valid JSON: %v", err))
		}
		if b, err := estate.ParseSeverity(hdr.Get("Vguard-Block-At")); err == nil {
			blockAt = b
		}
		audit = ", audit record " + hdr.Get("Vguard-Audit-Seq")
	}
	if arrives {
		// The findings the server holds for the VM, as the change leaves
		// them: a domain that starts runs with them.
		body, _, err := o.call(cmdPath, "GET", "/api/v1/findings?state=open&about="+url.QueryEscape("vm/"+vmName), nil)
		if err != nil {
			return cannot(err)
		}
		var held struct {
			Findings []check.Finding `json:"findings"`
		}
		if err := json.Unmarshal(body, &held); err != nil {
			return cannot(fmt.Errorf("the findings are not valid JSON: %w", err))
		}
		after := &change.Verdict{Introduced: v.Introduced, Resolved: v.Resolved, Changed: v.Worsened}
		if carried := libvirt.CarriedFindings(held.Findings, after, vmName, blockAt); len(carried) > 0 {
			judged := ""
			if audit != "" {
				word := map[string]string{"allow": "allowed", "warn": "allowed with warnings", "deny": "denied"}[string(v.Decision)]
				judged = "; the change itself was " + word + audit
			}
			return refusal(fmt.Sprintf("vguard: refused %s on %s (%s): the domain would run with findings at or above %s (vguard serve at %s%s):", what, cfg.Hypervisor, describe, blockAt, r.URL, judged), carried)
		}
	}
	return hookVerdict(g, change.Decision(v.Decision), v.Introduced, v.Worsened, blockAt, what, cfg.Hypervisor,
		fmt.Sprintf("vguard: refused %s on %s (%s): it introduces or makes worse findings at or above %s (vguard serve at %s%s):", what, cfg.Hypervisor, describe, blockAt, r.URL, audit))
}
