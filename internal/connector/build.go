package connector

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// UnzonedZone is the zone given to a discovered network that neither the
// platform nor the overlay puts in a zone.
const UnzonedZone = "unzoned"

// Output is the merged result of a sync, ready to write.
type Output struct {
	// Data is the documents: an Estate, then the platform's rules as a
	// Policy (when it has any), then the overlay's Policy documents.
	Data []byte
	// Result is Data as the loader reads it: what every other command sees.
	Result *load.Result
	// Warnings are for the operator's stderr.
	Warnings []string
}

// Build lays the overlay files (or directories) over the inventory (whose
// objects it changes in place: give it a fresh inventory each time), gives
// every network a zone and every named zone an exposure, writes the
// documents and loads them back with the loader, so that an estate that
// another command would refuse is never written. outPath is where the
// documents will be written ("" for stdout): relative manifest and scan
// paths are made relative to its directory. Input errors in the overlay
// come back as load.Errors.
func Build(inv *Inventory, overlays []string, outPath string) (*Output, error) {
	o := &overlay{e: &inv.Estate}
	files, err := OverlayFiles(overlays)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		o.apply(f)
	}
	if len(o.errs) > 0 {
		return nil, o.errs
	}
	if inv.Estate.Meta.Name == "" {
		inv.Estate.Meta.Name = inv.Source
	}
	warnings := append(slices.Clone(inv.Warnings), o.warnings...)
	warnings = append(warnings, fillZones(&inv.Estate)...)

	outDir := "."
	if outPath != "" && outPath != "-" {
		outDir = filepath.Dir(outPath)
	}
	relativize(&inv.Estate, outDir)
	data, err := encode(inv, o.policies)
	if err != nil {
		return nil, err
	}
	name := outPath
	if name == "" || name == "-" {
		name = "<sync output>"
	}
	// Loaded from where it will be written, so relative side-file paths
	// resolve as they will for the next command.
	res, err := load.Bytes(name, data, load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }})
	if err != nil {
		var lerrs load.Errors
		if errors.As(err, &lerrs) {
			return nil, &InvalidError{Errs: nameObjects(lerrs, name, &inv.Estate)}
		}
		return nil, err
	}
	return &Output{Data: data, Result: res, Warnings: warnings}, nil
}

// objectPath matches the start of an error path into an Estate list.
var objectPath = regexp.MustCompile(`^(zones|networks|hypervisors|datastores|images|vms|services|firewalls)\[(\d+)\]`)

// nameObjects rewrites loader errors about the merged documents, which
// were never written: the file is called <merged estate> (not the output
// path, which still holds the previous estate), and an object of the
// Estate is named, since its index in a file nobody sees says nothing.
func nameObjects(errs load.Errors, file string, e *estate.Estate) load.Errors {
	names := map[string][]string{}
	for _, l := range []struct {
		key  string
		list any
	}{
		{"zones", e.Zones}, {"networks", e.Networks}, {"hypervisors", e.Hypervisors}, {"datastores", e.Datastores},
		{"images", e.Images}, {"vms", e.VMs}, {"services", e.Services}, {"firewalls", e.Firewalls},
	} {
		v := reflect.ValueOf(l.list)
		for i := range v.Len() {
			name := ""
			if f := reflect.Indirect(v.Index(i)).FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String {
				name = f.String()
			}
			names[l.key] = append(names[l.key], name)
		}
	}
	out := make(load.Errors, len(errs))
	for i, err := range errs {
		c := *err
		if c.File == file {
			c.File, c.Line = "<merged estate>", 0
		}
		if m := objectPath.FindStringSubmatch(c.Path); m != nil {
			if j, _ := strconv.Atoi(m[2]); j < len(names[m[1]]) && names[m[1]][j] != "" {
				rest := strings.TrimPrefix(c.Path[len(m[0]):], ".")
				c.Path = strings.TrimSpace(strings.TrimSuffix(m[1], "s") + " " + strconv.Quote(names[m[1]][j]) + " " + rest)
			}
		}
		out[i] = &c
	}
	return out
}

// InvalidError means the merged documents do not load: the overlay refers
// to something neither it nor the platform defines, say. Nothing is
// written.
type InvalidError struct{ Errs load.Errors }

func (e *InvalidError) Error() string {
	return "the merged estate would not load, so it was not written:\n" + e.Errs.Error()
}

// fillZones puts every network without a zone in UnzonedZone and defines
// each zone that is named but not defined. A zone named after an exposure
// word (public, partner, internal, restricted) gets that exposure; any
// other gets internal. Both are reported, since the exposure of a zone is
// a fact only people can give.
func fillZones(e *estate.Estate) []string {
	var warnings []string
	defined := map[string]bool{}
	for _, z := range e.Zones {
		defined[z.Name] = true
	}
	need := func(zone, why string) {
		if zone == "" || defined[zone] {
			return
		}
		defined[zone] = true
		var x estate.Exposure
		if err := x.UnmarshalText([]byte(zone)); err != nil {
			x = estate.ExposureInternal
			if zone != UnzonedZone { // reported with its networks below
				warnings = append(warnings, fmt.Sprintf("zone %q (%s) has no exposure in the overlay; written as internal", zone, why))
			}
		}
		e.Zones = append(e.Zones, &estate.Zone{Name: zone, Exposure: x})
	}
	var unzoned []string
	for _, n := range e.Networks {
		if n.Zone == "" {
			n.Zone = UnzonedZone
			unzoned = append(unzoned, n.Name)
		}
		need(n.Zone, "network "+n.Name)
	}
	if len(unzoned) > 0 {
		warnings = append(warnings, fmt.Sprintf("%d network(s) have no zone on the platform or in the overlay, put in zone %q: %v",
			len(unzoned), UnzonedZone, unzoned))
	}
	for _, vm := range e.VMs {
		need(vm.HomeZone, "home zone of VM "+vm.Name)
	}
	return warnings
}

// relativize makes absolute side-file paths relative to dir, where the
// documents will be written, when that is possible.
func relativize(e *estate.Estate, dir string) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	rel := func(p *string) {
		if *p != "" && filepath.IsAbs(*p) {
			if r, err := filepath.Rel(absDir, *p); err == nil {
				*p = r
			}
		}
	}
	for _, vm := range e.VMs {
		rel(&vm.Manifest)
		rel(&vm.Scan)
	}
	for _, im := range e.Images {
		rel(&im.Manifest)
		rel(&im.Scan)
	}
}

// encode writes the documents as YAML.
func encode(inv *Inventory, policies []*syntax.Node) ([]byte, error) {
	e := &inv.Estate
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, key string, v *yaml.Node) {
		if v != nil {
			m.Content = append(m.Content, scalar("!!str", key), v)
		}
	}
	add(doc, "apiVersion", scalar("!!str", load.APIVersion))
	add(doc, "kind", scalar("!!str", "Estate"))
	meta, err := valueNode(reflect.ValueOf(e.Meta), false)
	if err != nil {
		return nil, err
	}
	add(doc, "metadata", meta)
	for _, l := range []struct {
		key  string
		list any
	}{
		{"zones", e.Zones}, {"networks", e.Networks}, {"hypervisors", e.Hypervisors}, {"datastores", e.Datastores},
		{"images", e.Images}, {"vms", e.VMs}, {"services", e.Services}, {"firewalls", e.Firewalls},
	} {
		n, err := listNode(l.list)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", l.key, err)
		}
		add(doc, l.key, n)
	}
	docs := []*yaml.Node{doc}
	if len(inv.Separate)+len(inv.Placement) > 0 {
		pol := &yaml.Node{Kind: yaml.MappingNode}
		add(pol, "apiVersion", scalar("!!str", load.APIVersion))
		add(pol, "kind", scalar("!!str", "Policy"))
		add(pol, "metadata", &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("!!str", "name"), scalar("!!str", "imported from "+inv.Source)}})
		for _, l := range []struct {
			key  string
			list any
		}{{"separate", inv.Separate}, {"placement", inv.Placement}} {
			n, err := listNode(l.list)
			if err != nil {
				return nil, fmt.Errorf("writing %s: %w", l.key, err)
			}
			add(pol, l.key, n)
		}
		docs = append(docs, pol)
	}
	for _, p := range policies {
		docs = append(docs, syntaxToYAML(p))
	}
	out, err := EncodeYAML(docs)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Written by vguard sync from "+inv.Source+". Edit the overlay, not this file.\n"), out...), nil
}

// EncodeYAML writes documents as one YAML stream, indented by two.
func EncodeYAML(docs []*yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile writes data to path through a temporary file in the same
// directory and a rename, so that a reader (or a failed sync) never sees a
// half-written estate. An existing file keeps its mode (0644 for a new
// one), and the directory is synced after the rename so that the new file
// survives a crash.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		// Some file systems refuse to sync a directory; the rename is
		// done either way.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
