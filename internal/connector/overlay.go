package connector

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// An overlay is ordinary Estate and Policy documents laid over what a
// connector discovered (docs/connectors.md says it for users):
//
//   - An Estate object whose name matches a discovered one of its kind
//     patches it: each field the overlay gives replaces the discovered
//     value, labels are merged key by key, and the overlay's nics are
//     matched to the discovered NICs by MAC (or, without a MAC, by network)
//     and patched one by one. A discovered value replaced by a different
//     one is noted on stderr, since the platform is usually right.
//   - An object only in the overlay is added whole, and must be complete as
//     in any Estate document (a VM needs its hypervisor).
//   - Later overlay files patch what earlier ones gave, the same way.
//   - Policy documents are copied to the output as they are, after the
//     rules imported from the platform.
//   - Relative manifest and scan paths are read relative to the overlay
//     file that gives them, as the loader does.

// overlayLists maps the list fields of an Estate document to how their
// objects are found and made.
var overlayLists = []string{"zones", "networks", "hypervisors", "datastores", "images", "vms", "services", "firewalls"}

// overlay applies overlay documents to an estate.
type overlay struct {
	e        *estate.Estate
	policies []*syntax.Node
	errs     load.Errors
	warnings []string
}

func (o *overlay) errorf(file string, line int, path, format string, args ...any) {
	o.errs = append(o.errs, &syntax.Error{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// OverlayFiles expands overlay paths as the loader does: a directory means
// its *.yaml, *.yml and *.json files (in any case), in name order.
func OverlayFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("overlay: %w", err)
		}
		n := 0
		for _, de := range entries {
			switch strings.ToLower(filepath.Ext(de.Name())) {
			case ".yaml", ".yml", ".json":
				files = append(files, filepath.Join(p, de.Name()))
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("overlay: directory %s holds no *.yaml, *.yml or *.json file", p)
		}
	}
	return files, nil
}

// apply reads one overlay file and lays it over o.e.
func (o *overlay) apply(file string) {
	docs, perr := load.ReadDocuments(file)
	if perr != nil {
		o.errs = append(o.errs, perr)
		return
	}
	for _, d := range docs {
		if d.Kind != syntax.MapNode {
			o.errorf(file, d.Line, "", "a document must be a mapping with apiVersion and kind")
			continue
		}
		if av := d.Get("apiVersion"); av == nil || av.Value != load.APIVersion {
			o.errorf(file, d.Line, "apiVersion", "want apiVersion %s", load.APIVersion)
			continue
		}
		kind := d.Get("kind")
		switch {
		case kind == nil:
			o.errorf(file, d.Line, "kind", "missing kind (Estate or Policy)")
		case kind.Value == "Estate":
			o.estateDoc(file, d)
		case kind.Value == "Policy":
			o.policies = append(o.policies, d)
		default:
			o.errorf(file, kind.Line, "kind", "an overlay holds Estate and Policy documents, not %q", kind.Value)
		}
	}
}

func (o *overlay) estateDoc(file string, d *syntax.Node) {
	for i := 0; i+1 < len(d.Items); i += 2 {
		k, v := d.Items[i], d.Items[i+1]
		switch k.Value {
		case "apiVersion", "kind":
			continue
		case "metadata":
			var m estate.Meta
			o.errs = append(o.errs, syntax.Decode(file, v, "metadata", &m)...)
			if m.Name != "" {
				o.e.Meta.Name = m.Name
			}
			continue
		}
		known := false
		for _, l := range overlayLists {
			known = known || l == k.Value
		}
		if !known {
			o.errorf(file, k.Line, k.Value, "unknown field %q of an Estate document", k.Value)
			continue
		}
		if v.Kind != syntax.SeqNode {
			o.errorf(file, v.Line, k.Value, "want a list")
			continue
		}
		for j, item := range v.Items {
			o.object(file, k.Value, syntax.IndexPath(k.Value, j), item)
		}
	}
}

// object patches the discovered object item names, or adds it.
func (o *overlay) object(file, list, path string, item *syntax.Node) {
	if item.Kind != syntax.MapNode {
		o.errorf(file, item.Line, path, "want a mapping")
		return
	}
	name := ""
	if n := item.Get("name"); n != nil {
		name = n.Value
	}
	if name == "" {
		o.errorf(file, item.Line, path+".name", "missing required field \"name\"")
		return
	}
	dir := filepath.Dir(file)
	e := o.e
	switch list {
	case "zones":
		e.Zones = patchOrAdd(o, file, path, item, e.Zones, func(z *estate.Zone) bool { return z.Name == name })
	case "networks":
		e.Networks = patchOrAdd(o, file, path, item, e.Networks, func(n *estate.Network) bool { return n.Name == name })
	case "hypervisors":
		e.Hypervisors = patchOrAdd(o, file, path, item, e.Hypervisors, func(h *estate.Hypervisor) bool { return h.Name == name })
	case "datastores":
		e.Datastores = patchOrAdd(o, file, path, item, e.Datastores, func(d *estate.Datastore) bool { return d.Name == name })
	case "services":
		e.Services = patchOrAdd(o, file, path, item, e.Services, func(s *estate.Service) bool { return s.Name == name })
	case "firewalls":
		e.Firewalls = patchOrAdd(o, file, path, item, e.Firewalls, func(f *estate.Firewall) bool { return f.Name == name })
	case "images":
		version := item.Get("version")
		e.Images = patchOrAdd(o, file, path, item, e.Images, func(im *estate.Image) bool {
			return im.Name == name && version != nil && fmt.Sprint(im.Version) == version.Value
		})
		if im := findLast(e.Images, func(im *estate.Image) bool {
			return im.Name == name && version != nil && fmt.Sprint(im.Version) == version.Value
		}); im != nil {
			rebase(dir, item, &im.Manifest, &im.Scan)
		}
	case "vms":
		e.VMs = o.vm(file, path, item, e.VMs, name)
		if vm := findLast(e.VMs, func(vm *estate.VM) bool { return vm.Name == name }); vm != nil {
			rebase(dir, item, &vm.Manifest, &vm.Scan)
		}
	}
}

func findLast[T any](list []*T, match func(*T) bool) *T {
	for i := len(list) - 1; i >= 0; i-- {
		if match(list[i]) {
			return list[i]
		}
	}
	return nil
}

// rebase makes the manifest and scan paths an overlay object gives
// absolute, read from the overlay file's directory; the writer makes them
// relative to the output file again.
func rebase(dir string, item *syntax.Node, manifest, scan *string) {
	for _, f := range []struct {
		key string
		p   *string
	}{{"manifest", manifest}, {"scan", scan}} {
		if item.Get(f.key) != nil && *f.p != "" && !filepath.IsAbs(*f.p) {
			if abs, err := filepath.Abs(filepath.Join(dir, *f.p)); err == nil {
				*f.p = abs
			}
		}
	}
}

// patchOrAdd patches the object of list that match picks with item, or
// decodes item as a new object and appends it.
func patchOrAdd[T any](o *overlay, file, path string, item *syntax.Node, list []*T, match func(*T) bool) []*T {
	if cur := findLast(list, match); cur != nil {
		o.patch(file, path, item, cur)
		return list
	}
	nv := new(T)
	if d, ok := any(nv).(syntax.Defaulter); ok {
		d.SetDefaults()
	}
	errs := syntax.Decode(file, item, path, nv)
	if len(errs) > 0 {
		o.errs = append(o.errs, errs...)
		return list
	}
	return append(list, nv)
}

// patch lays item over cur: given fields replace, labels merge. A
// discovered value replaced by a different one is noted.
func (o *overlay) patch(file, path string, item *syntax.Node, cur any, keys ...string) {
	v := reflect.ValueOf(cur).Elem()
	before := reflect.New(v.Type()).Elem()
	before.Set(v)
	var oldLabels map[string]string
	if lf := fieldByTag(v, "labels"); lf.IsValid() {
		oldLabels = lf.Interface().(map[string]string)
		lf.Set(reflect.Zero(lf.Type())) // decoded afresh below, then merged
	}
	errs := syntax.DecodePatch(file, item, path, cur)
	if len(errs) > 0 {
		o.errs = append(o.errs, errs...)
		v.Set(before)
		return
	}
	if lf := fieldByTag(v, "labels"); lf.IsValid() {
		merged := map[string]string{}
		for k, val := range oldLabels {
			merged[k] = val
		}
		for k, val := range lf.Interface().(map[string]string) {
			merged[k] = val
		}
		if len(merged) > 0 {
			lf.Set(reflect.ValueOf(merged))
		} else {
			lf.Set(reflect.Zero(lf.Type()))
		}
	}
	for i := 0; i+1 < len(item.Items); i += 2 {
		k := item.Items[i]
		if k.Value == "name" || k.Value == "labels" || slices.Contains(keys, k.Value) {
			continue // keys: those that matched the object
		}
		was, now := fieldByTag(before, k.Value), fieldByTag(v, k.Value)
		if was.IsValid() && !was.IsZero() && !reflect.DeepEqual(was.Interface(), now.Interface()) {
			o.warnings = append(o.warnings, fmt.Sprintf("%s:%d: %s.%s: the overlay replaces the value the platform reported",
				file, k.Line, path, k.Value))
		}
	}
}

// fieldByTag returns the field of struct v whose yaml tag names it.
func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// vm patches or adds a VM. Its nics are matched to the discovered NICs
// rather than replacing them, so that an overlay can add listening ports
// to a NIC without restating its MAC and network.
func (o *overlay) vm(file, path string, item *syntax.Node, vms []*estate.VM, name string) []*estate.VM {
	cur := findLast(vms, func(vm *estate.VM) bool { return vm.Name == name })
	if cur == nil {
		return patchOrAdd(o, file, path, item, vms, func(*estate.VM) bool { return false })
	}
	rest := &syntax.Node{Kind: syntax.MapNode, Line: item.Line}
	var nics *syntax.Node
	for i := 0; i+1 < len(item.Items); i += 2 {
		if item.Items[i].Value == "nics" {
			nics = item.Items[i+1]
			continue
		}
		rest.Items = append(rest.Items, item.Items[i], item.Items[i+1])
	}
	o.patch(file, path, rest, cur)
	if nics == nil {
		return vms
	}
	npath := path + ".nics"
	if nics.Kind != syntax.SeqNode {
		o.errorf(file, nics.Line, npath, "want a list")
		return vms
	}
	used := make([]bool, len(cur.NICs))
	for j, n := range nics.Items {
		p := syntax.IndexPath(npath, j)
		if n.Kind != syntax.MapNode {
			o.errorf(file, n.Line, p, "want a mapping")
			continue
		}
		at := -1
		if mac := n.Get("mac"); mac != nil {
			want := normalMAC(mac.Value)
			for i := range cur.NICs {
				if !used[i] && normalMAC(cur.NICs[i].MAC) == want {
					at = i
					break
				}
			}
		} else if net := n.Get("network"); net != nil {
			for i := range cur.NICs {
				if !used[i] && cur.NICs[i].Network == net.Value {
					at = i
					break
				}
			}
		}
		if at < 0 {
			o.errorf(file, n.Line, p, "no NIC of VM %q as discovered has this mac (or, without a mac, this network); an overlay patches NICs, it does not add them", name)
			continue
		}
		used[at] = true
		mac := cur.NICs[at].MAC
		o.patch(file, p, n, &cur.NICs[at], "mac")
		if normalMAC(cur.NICs[at].MAC) == normalMAC(mac) {
			cur.NICs[at].MAC = mac // the platform's spelling
		}
	}
	return vms
}

// normalMAC writes a MAC in one form (lower case, colons) for comparing.
func normalMAC(s string) string {
	s = strings.ToLower(strings.NewReplacer("-", "", ":", "", ".", "").Replace(s))
	if len(s) != 12 {
		return s
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}
