package check

import (
	"fmt"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// secretChecks declares VG105, the confidentiality check that reads scan
// reports; it lives apart from the other confidentiality checks because it
// is the one that needs side files.
func secretChecks() []*Check {
	return []*Check{
		{
			ID: "VG105", Name: "secret-in-image", Title: "Secret in an image",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "An image or VM scan report lists at least one secret.",
			Remediation: "Remove the secrets from the image (`vguard image sanitize`), rotate them, and have VMs fetch credentials at boot instead of carrying them.",
			// FactImages: a new image version with a secret is a finding.
			Reads: FactImage | FactExistence | FactImages,
			Run:   runSecretInImage,
		},
	}
}

// runSecretInImage is VG105. Images come first: an image that carries a
// secret passes it to every VM made from it, so the finding names those
// VMs. A VM's own scan report makes a finding of its own. A scoped run
// judges the images in scope (a finding's VMs are those made from it, which
// a change alters only for images in scope) and the VMs in scope.
func runSecretInImage(c *Context) {
	if c.Files == nil {
		return
	}
	var errs fileErrors
	defer errs.report(c)
	users := imageUsers(c)
	for _, im := range c.Images() {
		if im.Scan == "" {
			continue
		}
		r, err := c.Files.Scan(im.Scan)
		if err != nil {
			errs.add(im.Scan, "scan report", "image", im.Ref().String(), im.Pos, err)
			continue
		}
		if len(r.Secrets) == 0 {
			continue
		}
		related := users(im.Ref())
		c.Emit(Finding{
			Subject: ImageRef(im.Ref()),
			Related: related,
			Pos:     im.Pos,
			Message: fmt.Sprintf("Image %s carries %s (%s), and so does every VM made from it (%d in the estate); %s.",
				im.Ref(), plural(len(r.Secrets), "secret", "secrets"), joinCapped(r.Rules()), len(related), removeAdvice(r)),
			Evidence: secretEvidence(r),
		})
	}
	for _, vm := range judgedVMs(c) {
		if vm.Scan == "" {
			continue
		}
		r, err := c.Files.Scan(vm.Scan)
		if err != nil {
			errs.add(vm.Scan, "scan report", "vm", vm.Name, vm.Pos, err)
			continue
		}
		if len(r.Secrets) == 0 {
			continue
		}
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s carries %s on its disk (%s); %s.",
				vm.Name, plural(len(r.Secrets), "secret", "secrets"), joinCapped(r.Rules()), removeAdvice(r)),
			Evidence: secretEvidence(r),
		})
	}
}

// imageUsers returns a function giving the refs of the VMs made from an
// image. A scoped run asks the index for the few images in scope; a full run
// maps every image in one pass over the VMs, made only when first asked, as
// most estates have no image with a secret.
func imageUsers(c *Context) func(estate.ImageRef) []string {
	if c.Scoped() {
		return func(r estate.ImageRef) []string {
			vms := c.Index.VMsOfImage(r)
			out := make([]string, len(vms))
			for i, vm := range vms {
				out[i] = VMRef(vm.Name)
			}
			return out
		}
	}
	var users map[estate.ImageRef][]string
	return func(r estate.ImageRef) []string {
		if users == nil {
			users = map[estate.ImageRef][]string{}
			for _, vm := range c.Index.AllVMs() {
				if vm.Image != nil {
					users[*vm.Image] = append(users[*vm.Image], VMRef(vm.Name))
				}
			}
		}
		return users[r]
	}
}

// secretEvidence gives the count, the rules and the files of a report's
// secrets: never their values, not even redacted.
func secretEvidence(r *scanreport.Report) map[string]any {
	return map[string]any{
		"secrets": len(r.Secrets),
		"rules":   capList(r.Rules()),
		"paths":   capList(r.Paths()),
	}
}

func removeAdvice(r *scanreport.Report) string {
	if len(r.Secrets) == 1 {
		return "remove the secret and rotate it"
	}
	return "remove the secrets and rotate them"
}

// joinCapped joins up to a few items for a message.
func joinCapped(s []string) string {
	const show = 3
	if len(s) > show {
		return strings.Join(s[:show], ", ") + " and " + plural(len(s)-show, "more", "more")
	}
	return joinAnd(s)
}
