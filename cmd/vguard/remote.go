package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/report"
)

// remoteOptions send a command to a running vguard serve instead of
// reading the estate locally.
type remoteOptions struct {
	url    string
	token  string
	cacert string
	// timeout bounds each request (default 5 minutes: a large judgement
	// takes its time); the libvirt hook sets a short one.
	timeout time.Duration
}

func (o *remoteOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.url, "remote", "", "judge against the estate of the vguard serve at `URL` instead of local files")
	f.StringVar(&o.token, "token", "", "bearer token for --remote (default $VGUARD_TOKEN; the variable keeps it out of the process list)")
	f.StringVar(&o.cacert, "cacert", "", "trust the server certificate signed by the CA in `FILE` (for --remote over TLS)")
}

// client returns the HTTP client and the token for --remote.
func (o *remoteOptions) client(cmdPath string) (*http.Client, string, error) {
	tok := o.token
	if tok == "" {
		tok = os.Getenv("VGUARD_TOKEN")
	}
	if tok == "" {
		return nil, "", usagef(cmdPath, "--remote needs a token: --token or $VGUARD_TOKEN")
	}
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", usagef(cmdPath, "--remote: want http(s)://HOST[:PORT], got %q", o.url)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.cacert != "" {
		pem, err := os.ReadFile(o.cacert)
		if err != nil {
			return nil, "", usagef(cmdPath, "--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", usagef(cmdPath, "--cacert: %s holds no PEM certificate", o.cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	timeout := o.timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	return &http.Client{Transport: tr, Timeout: timeout}, tok, nil
}

// remoteError is the server's refusal as the API writes it.
type remoteError struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems"`
}

// call sends one request and returns the body of a 2xx answer; any other
// answer is turned into the CLI's errors (input problems one per line).
func (o *remoteOptions) call(cmdPath, method, path string, body []byte) ([]byte, http.Header, error) {
	c, tok, err := o.client(cmdPath)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(o.url, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, usagef(cmdPath, "--remote: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var verify *tls.CertificateVerificationError
		if errors.As(err, &unknownCA) || errors.As(err, &verify) {
			hint := "give the CA that signed the server's certificate with --cacert FILE"
			if o.cacert != "" {
				hint = "the CA in --cacert " + o.cacert + " did not sign it"
			}
			return nil, nil, fmt.Errorf("--remote: %w; %s", err, hint)
		}
		return nil, nil, fmt.Errorf("--remote: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("--remote: reading the answer: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return out, resp.Header, nil
	}
	var re remoteError
	if json.Unmarshal(out, &re) != nil || re.Error == "" {
		re.Error = strings.TrimSpace(string(out))
	}
	if resp.StatusCode >= 500 {
		// The server failed, not the input: say so, and do not dress it
		// as input problems (cli.md has no other exit code than 2 for it).
		return nil, nil, fmt.Errorf("--remote: the server failed: %s (HTTP %d); the input was not judged", re.Error, resp.StatusCode)
	}
	errs := []error{fmt.Errorf("vguard serve: %s (HTTP %d)", re.Error, resp.StatusCode)}
	if len(re.Problems) > 0 {
		errs = errs[:0]
		for _, p := range re.Problems {
			errs = append(errs, errors.New(p))
		}
	}
	return nil, nil, &inputError{errs: errs}
}

// runRemotePlan is `vguard plan CHANGE --remote URL`: the server judges
// the change against its estate and answers with the JSON of
// `vguard plan --format json`, written here in the format asked for.
func runRemotePlan(g *globalOptions, o *planOptions, format report.Format, changeFile string, paths []string, cmdPath string) error {
	if len(paths) > 0 {
		return usagef(cmdPath, "--remote judges against the server's estate: give no PATH")
	}
	if _, _, err := o.remote.client(cmdPath); err != nil {
		return err
	}
	var data []byte
	var err error
	name := "change.yaml"
	if changeFile == "-" {
		data, err = io.ReadAll(g.stdin)
	} else {
		data, err = os.ReadFile(changeFile)
		name = filepath.Base(changeFile)
	}
	if err != nil {
		return usagef(cmdPath, "reading the change: %v", err)
	}
	body, hdr, err := o.remote.call(cmdPath, "POST", "/api/v1/judge?name="+url.QueryEscape(name), data)
	if err != nil {
		return err
	}
	var v struct {
		Decision   string          `json:"decision"`
		Introduced []check.Finding `json:"introduced"`
		Resolved   []check.Finding `json:"resolved"`
		Worsened   []check.Finding `json:"worsened"`
		Unchanged  int             `json:"unchanged"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("--remote: the server's verdict is not valid JSON: %w", err)
	}
	blockAt, err := estate.ParseSeverity(hdr.Get("Vguard-Block-At"))
	if err != nil {
		blockAt = estate.SevHigh
	}
	rep := &report.PlanReport{
		Decision: v.Decision, Introduced: v.Introduced, Resolved: v.Resolved, Worsened: v.Worsened, Unchanged: v.Unchanged,
		BlockAt: blockAt, Inputs: []string{changeFile}, EstateName: o.remote.url,
	}
	// The server has judged it; parsing it here only names it and its
	// operations in the table.
	if chg, err := change.Parse(name, data); err == nil {
		rep.ChangeName = chg.Meta.Name
		for _, op := range chg.Operations {
			rep.Operations = append(rep.Operations, op.String())
		}
	}
	err = g.writeOutput(o.output, func(w io.Writer) error {
		if format == report.JSON {
			_, err := w.Write(body) // exactly what the server sent
			return err
		}
		return report.WritePlan(w, format, rep)
	})
	if err != nil {
		return err
	}
	if v.Decision == "deny" {
		return &verdictError{msg: fmt.Sprintf("vguard: change denied by %s: %s (audit record %s)",
			o.remote.url, change.DenyReason(blockAt, v.Introduced, v.Worsened), hdr.Get("Vguard-Audit-Seq"))}
	}
	return nil
}
