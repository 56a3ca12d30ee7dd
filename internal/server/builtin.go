package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	platform "github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/libvirt"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
	"github.com/vguard-dev/vguard/internal/vsphere"
)

// BuiltinConnectors are the connectors of issue 6 (vguard sync and watch)
// as the server runs them: kinds vsphere and libvirt (docs/serve.md lists
// their settings). Each reads its platform, lays its overlays over what it
// found (connector.Build, which also loads the result) and returns one
// document, estate.yaml.
func BuiltinConnectors() map[string]ConnectorFactory {
	return map[string]ConnectorFactory{"vsphere": newVSphereConnector, "libvirt": newLibvirtConnector}
}

// commonSettings are the settings every built-in connector takes.
type commonSettings struct {
	// Overlays are Estate/Policy files or directories laid over what the
	// platform reports (relative to the config file).
	Overlays []string `yaml:"overlays"`
	// Debounce is how long a watch waits after a change for the rest of
	// one operation's changes (default 200ms).
	Debounce time.Duration `yaml:"debounce"`
}

// decodeSettings reads a connector's settings into v strictly: an unknown
// key is an error, as it is elsewhere in the config.
func decodeSettings(cc ConnectorConfig, v any) error {
	raw, err := yaml.Marshal(cc.Settings)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("settings: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

func (c *commonSettings) check(cc ConnectorConfig) error {
	for i, o := range c.Overlays {
		if !filepath.IsAbs(o) && cc.Dir != "" {
			o = filepath.Join(cc.Dir, o)
		}
		if _, err := os.Stat(o); err != nil {
			return fmt.Errorf("settings.overlays: %w", err)
		}
		c.Overlays[i] = o
	}
	if c.Debounce < 0 || c.Debounce > time.Minute {
		return errors.New("settings.debounce: want 0 to 1m")
	}
	if c.Debounce == 0 {
		c.Debounce = 200 * time.Millisecond
	}
	return nil
}

// build merges an inventory with the overlays into the connector's
// document.
//
// The document is built as if written into the first overlay's directory
// (the overlay itself when it is a directory): side-file paths the
// overlays give (manifest:, scan:) come out relative to it, whatever the
// server's working directory, and the stored document connectors/NAME/
// estate.yaml names them as connectors/NAME/<path under the overlay
// directory>, the name to upload them under.
//
// A zone that only the connector's guess defines (named by a network or a
// VM, defined neither by the platform nor by an overlay: written as
// internal, or as the exposure word it is named after) goes to a second
// document, defaults.yaml, whose definitions yield to any other (see
// Connector): an admin's upload or another connector's overlay may then
// define that zone as it really is.
func (c *commonSettings) build(inv *platform.Inventory) ([]load.Source, error) {
	given, err := overlayZones(c.Overlays)
	if err != nil {
		return nil, err
	}
	for _, z := range inv.Estate.Zones {
		given[z.Name] = true
	}
	out, err := platform.Build(inv, c.Overlays, c.outPath())
	if err != nil {
		return nil, err
	}
	guessed := map[string]bool{}
	for _, z := range inv.Estate.Zones {
		if !given[z.Name] {
			guessed[z.Name] = true
		}
	}
	if len(guessed) == 0 {
		return []load.Source{{Name: "estate.yaml", Data: out.Data}}, nil
	}
	data, defaults, err := splitZones(out.Data, guessed)
	if err != nil {
		return nil, fmt.Errorf("setting the guessed zones apart: %w", err)
	}
	return []load.Source{{Name: "estate.yaml", Data: data}, {Name: defaultsDoc, Data: defaults}}, nil
}

// overlayZones is the set of zones the overlays' Estate documents define.
func overlayZones(overlays []string) (map[string]bool, error) {
	zones := map[string]bool{}
	files, err := platform.OverlayFiles(overlays)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		docs, serr := load.ReadDocuments(f)
		if serr != nil {
			continue // Build reports it
		}
		for _, d := range docs {
			if docKind(d) != "Estate" {
				continue
			}
			if seq := syntaxValue(d, "zones"); seq != nil && seq.Kind == syntax.SeqNode {
				for _, z := range seq.Items {
					if n := syntaxValue(z, "name"); n != nil {
						zones[n.Value] = true
					}
				}
			}
		}
	}
	return zones, nil
}

// splitZones moves the zones named in guessed out of the Estate document
// in data into an Estate document of their own.
func splitZones(data []byte, guessed map[string]bool) (rest, defaults []byte, err error) {
	docs, err := parseYAMLDocs(data)
	if err != nil {
		return nil, nil, err
	}
	var moved []*yaml.Node
	for _, d := range docs {
		seq := mapValue(d, "zones")
		if yamlKind(d) != "Estate" || seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		var kept []*yaml.Node
		for _, z := range seq.Content {
			if n := mapValue(z, "name"); n != nil && guessed[n.Value] {
				moved = append(moved, z)
			} else {
				kept = append(kept, z)
			}
		}
		seq.Content = kept
	}
	if rest, err = platform.EncodeYAML(docs); err != nil {
		return nil, nil, err
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("apiVersion"), str(load.APIVersion), str("kind"), str("Estate"),
		str("zones"), {Kind: yaml.SequenceNode, Content: moved}}}
	defaults, err = platform.EncodeYAML([]*yaml.Node{doc})
	return rest, defaults, err
}

// outPath is where the document is built as if written (see build).
func (c *commonSettings) outPath() string {
	if len(c.Overlays) == 0 {
		return ""
	}
	dir := c.Overlays[0]
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	return filepath.Join(dir, "estate.yaml")
}

// watch adapts a platform's watch loop to WatchingConnector.Watch.
func (c *commonSettings) watch(ctx context.Context, update func([]load.Source) error,
	run func(context.Context, func(*platform.Inventory) error) error) error {
	err := run(ctx, func(inv *platform.Inventory) error {
		srcs, err := c.build(inv)
		if err != nil {
			return err
		}
		return update(srcs)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type vsphereConnector struct {
	commonSettings
	ep *vsphere.Endpoint
}

type vsphereSettings struct {
	commonSettings `yaml:",inline"`
	// URL is vCenter's SDK URL, https://HOST/sdk; it may hold the user
	// but not the password.
	URL  string `yaml:"url"`
	User string `yaml:"user"`
	// The password is read from an environment variable or a file, so
	// that the config file holds no secret; Password itself is accepted
	// but discouraged.
	PasswordEnv  string `yaml:"passwordEnv"`
	PasswordFile string `yaml:"passwordFile"`
	Password     string `yaml:"password"`
	Insecure     bool   `yaml:"insecure"`
}

func newVSphereConnector(cc ConnectorConfig) (Connector, error) {
	var s vsphereSettings
	if err := decodeSettings(cc, &s); err != nil {
		return nil, err
	}
	if err := s.check(cc); err != nil {
		return nil, err
	}
	if s.URL == "" {
		return nil, errors.New("settings.url: want vCenter's https://HOST/sdk")
	}
	// The parse of `vguard sync vsphere --url`, with its refusal of the
	// shapes that would put part of a password into the printed URL.
	u, err := vsphere.ParseURL(s.URL, "settings.url", "vCenter's https://HOST/sdk")
	if err != nil {
		return nil, err
	}
	if _, has := u.User.Password(); has {
		return nil, errors.New("settings.url: must not hold the password; use passwordEnv or passwordFile")
	}
	user := s.User
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	if user == "" {
		return nil, errors.New("settings.user: required")
	}
	pw, err := secretSetting("settings.password", s.Password, s.PasswordEnv, s.PasswordFile, cc.Dir)
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(user, pw)
	ep, err := vsphere.ParseEndpoint(u.String(), s.Insecure)
	if err != nil {
		return nil, fmt.Errorf("settings.url: %w", err)
	}
	return &vsphereConnector{commonSettings: s.commonSettings, ep: ep}, nil
}

// secretSetting reads a secret given inline, by environment variable or
// by file (exactly one). Its errors never hold the secret.
func secretSetting(field, inline, env, file, dir string) (string, error) {
	n := 0
	for _, v := range []string{inline, env, file} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("%s: give exactly one of passwordEnv, passwordFile or password", field)
	}
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%sEnv: the environment variable %s is not set", field, env)
		}
		return v, nil
	case file != "":
		if !filepath.IsAbs(file) && dir != "" {
			file = filepath.Join(dir, file)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%sFile: %w", field, err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	return inline, nil
}

func (c *vsphereConnector) Sync(ctx context.Context) ([]load.Source, error) {
	inv, err := vsphere.Sync(ctx, c.ep)
	if err != nil {
		return nil, err
	}
	return c.build(inv)
}

func (c *vsphereConnector) Watch(ctx context.Context, update func([]load.Source) error) error {
	return c.watch(ctx, update, func(ctx context.Context, up func(*platform.Inventory) error) error {
		return vsphere.Watch(ctx, c.ep, c.Debounce, up)
	})
}

type libvirtConnector struct {
	commonSettings
	targets []libvirt.Target
}

type libvirtSettings struct {
	commonSettings `yaml:",inline"`
	// URIs are the hypervisors, one libvirt URI each, optionally
	// NAME=URI as for vguard sync libvirt --uri.
	URIs []string `yaml:"uris"`
}

func newLibvirtConnector(cc ConnectorConfig) (Connector, error) {
	var s libvirtSettings
	if err := decodeSettings(cc, &s); err != nil {
		return nil, err
	}
	if err := s.check(cc); err != nil {
		return nil, err
	}
	if len(s.URIs) == 0 {
		return nil, errors.New("settings.uris: give at least one libvirt URI")
	}
	c := &libvirtConnector{commonSettings: s.commonSettings}
	for _, u := range s.URIs {
		t, err := libvirt.ParseTarget(u)
		if err != nil {
			return nil, fmt.Errorf("settings.uris: %w", err)
		}
		c.targets = append(c.targets, t)
	}
	return c, nil
}

func (c *libvirtConnector) Sync(ctx context.Context) ([]load.Source, error) {
	inv, err := libvirt.Sync(ctx, c.targets)
	if err != nil {
		return nil, err
	}
	return c.build(inv)
}

func (c *libvirtConnector) Watch(ctx context.Context, update func([]load.Source) error) error {
	return c.watch(ctx, update, func(ctx context.Context, up func(*platform.Inventory) error) error {
		return libvirt.Watch(ctx, c.targets, c.Debounce, up)
	})
}
