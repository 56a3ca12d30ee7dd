// Package vsphere reads a vSphere estate through vCenter's API (govmomi):
// clusters and hosts, VMs with their NICs, standard and distributed port
// groups with VLAN IDs, and DRS rules, in a few bulk property-collector
// requests over a container view rather than a round trip per object.
// Security attributes come from tags or custom attributes in categories
// named vguard.* (docs/connectors.md). The URL's password is kept apart
// from every message: errors carry the URL without it.
package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/vguard-dev/vguard/internal/connector"
)

// Endpoint is a parsed --url: where vCenter is, and the credentials, kept
// apart so that the URL can be printed.
type Endpoint struct {
	URL      *url.URL // without user information
	user     *url.Userinfo
	Insecure bool
}

// escapeHint ends the errors of a --url that may hold unescaped
// characters: a # starts a fragment, a / or ? ends the host, @ splits
// user information early.
const escapeHint = "; percent-encode special characters in USER and PASS (@ → %40, # → %23, / → %2F, ? → %3F, % → %25)"

// ParseEndpoint reads https://USER:PASS@HOST/sdk (the /sdk path is added
// when missing). Its errors never quote the URL, which holds a password.
func ParseEndpoint(raw string, insecure bool) (*Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("--url is not a URL such as https://USER:PASS@HOST/sdk" + escapeHint)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("--url must start with https:// (https://USER:PASS@HOST/sdk)")
	}
	if u.Host == "" {
		return nil, errors.New("--url has no host (want https://USER:PASS@HOST/sdk)" + escapeHint)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errors.New("--url has no user name (want https://USER:PASS@HOST/sdk)" + escapeHint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	ep := &Endpoint{user: u.User, Insecure: insecure}
	clean := *u
	clean.User = nil
	ep.URL = &clean
	return ep, nil
}

// SetPassword gives the password from somewhere other than the URL (a
// file, the environment), so that it stays out of the URL and the process
// list. A URL that has a password of its own is an error: two sources
// would leave it unclear which one was used.
func (ep *Endpoint) SetPassword(p string) error {
	if _, has := ep.user.Password(); has {
		return errors.New("the password is both in --url and given apart; give it once")
	}
	ep.user = url.UserPassword(ep.user.Username(), p)
	return nil
}

// String is the URL without credentials.
func (ep *Endpoint) String() string { return ep.URL.String() }

// redact removes the password (plain and escaped) from a message.
func (ep *Endpoint) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if p, ok := ep.user.Password(); ok {
		msg = connector.RedactSecret(msg, p)
	}
	return errors.New(msg)
}

// Session is a logged-in connection to vCenter.
type Session struct {
	ep   *Endpoint
	C    *vim25.Client
	sm   *session.Manager
	rest *rest.Client // nil until tags are first read
	// watching drops "nothing was written" from messages: a watch
	// writes as it goes.
	watching bool
}

// Login connects and logs in. Errors name the URL without its password.
func Login(ctx context.Context, ep *Endpoint) (*Session, error) {
	sc := soap.NewClient(ep.URL, ep.Insecure)
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "x509:") && !ep.Insecure {
			hint = " (for a self-signed certificate, use --insecure)"
		}
		return nil, fmt.Errorf("connecting to %s: %w%s", ep, ep.redact(err), hint)
	}
	sm := session.NewManager(vc)
	if err := sm.Login(ctx, ep.user); err != nil {
		return nil, fmt.Errorf("logging in to %s as %s: %w", ep, ep.user.Username(), ep.redact(err))
	}
	return &Session{ep: ep, C: vc, sm: sm}, nil
}

// Logout ends the sessions; errors are of no use to the caller by then.
func (s *Session) Logout(ctx context.Context) {
	if s.rest != nil {
		_ = s.rest.Logout(ctx)
	}
	_ = s.sm.Logout(ctx)
}

// restClient logs in to the vAPI endpoint (tags) with the same user.
func (s *Session) restClient(ctx context.Context) (*rest.Client, error) {
	if s.rest != nil {
		return s.rest, nil
	}
	rc := rest.NewClient(s.C)
	if err := rc.Login(ctx, s.ep.user); err != nil {
		return nil, s.ep.redact(err)
	}
	s.rest = rc
	return rc, nil
}
