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
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

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
	// Timeout bounds connecting and each request that has no deadline of
	// its own (DefaultTimeout when zero). The watch's WaitForUpdatesEx
	// long polls carry their own deadline and wait as long as it says.
	Timeout time.Duration
}

// DefaultTimeout is Endpoint.Timeout when none is set: a vCenter that
// accepts the connection and never answers must end a sync with an error.
const DefaultTimeout = 30 * time.Second

// escapeHint ends the errors of a --url that may hold unescaped
// characters: a # starts a fragment, a / or ? ends the host, @ splits
// user information early.
const escapeHint = "; percent-encode special characters in USER and PASS (@ → %40, # → %23, / → %2F, ? → %3F, % → %25)"

// ParseURL reads an http(s) URL of vCenter, https://[USER[:PASS]@]HOST[/PATH],
// refusing every shape in which part of a password could end up outside
// the user information. url.Parse ends the host at the first /, ? or #
// and splits the user information at the last @ before it, so a password
// such as Sup3r@Part/2024 in https://admin:Sup3r@Part/2024@vc/sdk parses
// without error, with "Part" as the host and "/2024@vc/sdk" as the path:
// printing that URL, or connecting to it, would give most of the
// password away. So an @ after the authority, a query, a fragment or an
// opaque part is refused. field names the URL in errors (--url,
// settings.url) and want is the shape to ask for; errors never quote the
// URL. The result holds the scheme, the user information, the host and the
// path, nothing else.
func ParseURL(raw, field, want string) (*url.URL, error) {
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if i := strings.IndexAny(rest, "/?#"); i >= 0 && strings.Contains(rest[i:], "@") {
			return nil, fmt.Errorf("%s has an @ after the host (want %s)%s", field, want, escapeHint)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a URL such as %s%s", field, want, escapeHint)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%s must start with https:// (%s)", field, want)
	}
	switch {
	case u.Opaque != "":
		return nil, fmt.Errorf("%s has no // after the scheme (want %s)%s", field, want, escapeHint)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(u.Path, "@"):
		return nil, fmt.Errorf("%s has a query (?), a fragment (#) or an @ after the host (want %s)%s", field, want, escapeHint)
	case u.Host == "":
		return nil, fmt.Errorf("%s has no host (want %s)%s", field, want, escapeHint)
	}
	return &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: u.Path}, nil
}

// ParseEndpoint reads https://USER:PASS@HOST/sdk (the /sdk path is added
// when missing), with the checks of ParseURL. Its errors never quote the
// URL, which holds a password.
func ParseEndpoint(raw string, insecure bool) (*Endpoint, error) {
	const want = "https://USER:PASS@HOST/sdk"
	u, err := ParseURL(raw, "--url", want)
	if err != nil {
		return nil, err
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errors.New("--url has no user name (want " + want + ")" + escapeHint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	return &Endpoint{
		URL:      &url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path},
		user:     u.User,
		Insecure: insecure,
	}, nil
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

// String is the URL without credentials: scheme, host and path only,
// whatever a caller may have put in URL since.
func (ep *Endpoint) String() string {
	return (&url.URL{Scheme: ep.URL.Scheme, Host: ep.URL.Host, Path: ep.URL.Path}).String()
}

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
	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if tr := sc.DefaultTransport(); tr != nil {
		tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = timeout
	}
	sc.Client.Transport = deadlineTransport{next: sc.Client.Transport, timeout: timeout}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			return nil, fmt.Errorf("connecting to %s: no answer within %v (is vCenter up and answering on that port?)", ep, timeout)
		}
		hint := ""
		if strings.Contains(err.Error(), "x509:") && !ep.Insecure {
			hint = " (for a self-signed certificate, use --insecure)"
		}
		return nil, fmt.Errorf("connecting to %s: %w%s", ep, ep.redact(err), hint)
	}
	sm := session.NewManager(vc)
	if err := sm.Login(ctx, ep.user); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			return nil, fmt.Errorf("logging in to %s: no answer within %v", ep, timeout)
		}
		return nil, fmt.Errorf("logging in to %s as %s: %w", ep, ep.user.Username(), ep.redact(err))
	}
	return &Session{ep: ep, C: vc, sm: sm}, nil
}

// deadlineTransport gives each request without a deadline of its own one
// of timeout, which lasts until its answer's body is read and closed.
type deadlineTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t deadlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	if _, has := req.Context().Deadline(); has {
		return next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// Logout ends the sessions; errors are of no use to the caller by then.
func (s *Session) Logout(ctx context.Context) {
	if s.rest != nil {
		_ = s.rest.Logout(ctx)
	}
	_ = s.sm.Logout(ctx)
}

// restClient logs in to the vAPI endpoint (tags) with the same user. The
// error is govmomi's own, unredacted, so that the caller can tell an
// endpoint that is not there (404) from one that fails.
func (s *Session) restClient(ctx context.Context) (*rest.Client, error) {
	if s.rest != nil {
		return s.rest, nil
	}
	rc := rest.NewClient(s.C)
	if err := rc.Login(ctx, s.ep.user); err != nil {
		return nil, err
	}
	s.rest = rc
	return rc, nil
}
