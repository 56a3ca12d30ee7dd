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
			Run:         runSecretInImage,
		},
	}
}

// runSecretInImage is VG105. Images come first: an image that carries a
// secret passes it to every VM made from it, so the finding names those
// VMs, found with one pass over the VMs built only when some image has a
// secret. A VM's own scan report makes a finding of its own.
func runSecretInImage(c *Context) {
	if c.Files == nil {
		return
	}
	x := c.Index
	var errs fileErrors
	defer errs.report(c)
	var users map[estate.ImageRef][]string
	for _, im := range x.Estate.Images {
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
		if users == nil {
			users = imageUsers(x)
		}
		related := users[im.Ref()]
		c.Emit(Finding{
			Subject: ImageRef(im.Ref()),
			Related: related,
			Pos:     im.Pos,
			Message: fmt.Sprintf("Image %s carries %s (%s), and so does every VM made from it (%d in the estate); %s.",
				im.Ref(), plural(len(r.Secrets), "secret", "secrets"), joinCapped(r.Rules()), len(related), removeAdvice(r)),
			Evidence: secretEvidence(r),
		})
	}
	for _, vm := range x.Estate.VMs {
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

// imageUsers maps each image to the refs of the VMs that run it.
func imageUsers(x *estate.Index) map[estate.ImageRef][]string {
	users := map[estate.ImageRef][]string{}
	for _, vm := range x.Estate.VMs {
		if vm.Image != nil {
			users[*vm.Image] = append(users[*vm.Image], VMRef(vm.Name))
		}
	}
	return users
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
