// Package connector holds what the platform connectors (vSphere, libvirt)
// share: the Inventory a connector discovers, the overlay of Estate and
// Policy documents that adds what a platform cannot know, the writing of the
// merged result as Estate and Policy documents (validated with the loader
// and written atomically), and the watch loop's finding events.
//
// A connector never writes a file itself: it returns an Inventory, and Build
// turns inventory plus overlay into documents that every other vguard
// command reads.
package connector

import (
	"cmp"
	"net/url"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Inventory is what a connector discovered on its platform: facts as an
// Estate (networks, hypervisors, VMs; zones only where the platform names
// them) and the platform's own placement rules (vSphere DRS rules) as
// Policy rules.
type Inventory struct {
	// Source says where the facts came from, for the document's metadata
	// and messages. It must never hold a secret.
	Source string
	Estate estate.Estate
	// Separate and Placement are rules the platform enforces, imported so
	// that checks and placement honour them too.
	Separate  []*estate.SeparateRule
	Placement []*estate.PlacementRule
	// Warnings are facts the connector could not map (a NIC on an
	// unsupported backing, a duplicate name) and how it dealt with them.
	Warnings []string
}

// SortObjects puts every list of the inventory in name order, so that the
// same platform gives the same bytes whatever order its API answered in.
func (inv *Inventory) SortObjects() {
	e := &inv.Estate
	slices.SortFunc(e.Zones, func(a, b *estate.Zone) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(e.Networks, func(a, b *estate.Network) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(e.Hypervisors, func(a, b *estate.Hypervisor) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(e.VMs, func(a, b *estate.VM) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(inv.Separate, func(a, b *estate.SeparateRule) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(inv.Placement, func(a, b *estate.PlacementRule) int { return cmp.Compare(a.Name, b.Name) })
}

// RedactSecret returns msg with every form of secret a URL may carry
// replaced by xxxxx: as given, query-escaped, path-escaped and escaped as
// URL user information (a password with @, # or / appears escaped in
// errors that quote the URL).
func RedactSecret(msg, secret string) string {
	if secret == "" {
		return msg
	}
	user := strings.TrimPrefix(url.UserPassword("", secret).String(), ":")
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), user} {
		if form != "" {
			msg = strings.ReplaceAll(msg, form, "xxxxx")
		}
	}
	return msg
}
