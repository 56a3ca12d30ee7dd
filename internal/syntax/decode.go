package syntax

import (
	"encoding"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Positioner is implemented by values that want to know where they were
// defined; the decoder calls SetPos with the line of their node.
type Positioner interface{ SetPos(file string, line int) }

// Defaulter is implemented by values with defaults; the decoder calls
// SetDefaults on a new list element before reading its fields, so that
// fields the document leaves out keep the default.
type Defaulter interface{ SetDefaults() }

// Decode reads n into out (a non-nil pointer) and returns every problem
// found. Struct fields are named by their `yaml` tag; the option
// `,required` makes a field mandatory; `-` skips it. Types that implement
// encoding.TextUnmarshaler read scalars through it (and, if they are
// structs, mappings through their fields).
//
// A field of type *Node takes the node itself, undecoded, for callers that
// decode it later by its context (a Change operation's spec).
func Decode(file string, n *Node, prefix string, out any) []*Error {
	d := &decoder{file: file}
	return d.run(n, prefix, out)
}

// DecodePatch is Decode for a partial value laid over an existing one (a
// Change's `set`): fields the node gives replace those of out, others stay,
// and required fields need not be given.
func DecodePatch(file string, n *Node, prefix string, out any) []*Error {
	d := &decoder{file: file, patch: true}
	return d.run(n, prefix, out)
}

func (d *decoder) run(n *Node, prefix string, out any) []*Error {
	if prefix != "" {
		d.push(prefix, 0)
	}
	d.value(n, reflect.ValueOf(out).Elem())
	return d.errs
}

var nodeType = reflect.TypeFor[*Node]()

// seg is one step of the path to the value being decoded: a field name, or
// a list index when name is "".
type seg struct {
	name  string
	index int
}

// decoder keeps the path to the value being decoded as a stack of steps,
// rendered only when an error needs it: building path strings for every
// field of a large estate cost more than decoding it.
type decoder struct {
	file  string
	patch bool // laying a partial value over an existing one
	errs  []*Error
	path  []seg
}

func (d *decoder) push(name string, index int) { d.path = append(d.path, seg{name, index}) }
func (d *decoder) pop()                        { d.path = d.path[:len(d.path)-1] }

func (d *decoder) pathString() string {
	var b strings.Builder
	for _, s := range d.path {
		if s.name == "" {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
	}
	return b.String()
}

func (d *decoder) errorf(n *Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Path: d.pathString(), Msg: fmt.Sprintf(format, args...)})
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	positionerType      = reflect.TypeFor[Positioner]()
	defaulterType       = reflect.TypeFor[Defaulter]()
)

func (d *decoder) value(n *Node, v reflect.Value) {
	t := v.Type()
	if t == nodeType {
		v.Set(reflect.ValueOf(n))
		return
	}
	if n.Kind == ScalarNode && n.Tag == NullTag {
		return // null leaves the field as it was: unset, or its default
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.value(n, v.Elem())
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) && (n.Kind == ScalarNode || t.Kind() != reflect.Struct) {
		if n.Kind != ScalarNode {
			d.errorf(n, "want a single value, got %s", n.describe())
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, v)
	case reflect.Slice:
		d.list(n, v)
	case reflect.Map:
		d.mapping(n, v)
	case reflect.String:
		if n.Kind != ScalarNode {
			d.errorf(n, "want a string, got %s", n.describe())
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != ScalarNode || n.Tag != BoolTag {
			d.errorf(n, "want true or false, got %s", n.describe())
			return
		}
		v.SetBool(n.Value == "true")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := parseInt(n)
		if !ok || v.OverflowInt(i) {
			d.errorf(n, "want an integer, got %s", n.describe())
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != ScalarNode || (n.Tag != IntTag && n.Tag != FloatTag) || err != nil {
			d.errorf(n, "want a number, got %s", n.describe())
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, "cannot read into %s", t)
	}
}

func parseInt(n *Node) (int64, bool) {
	if n.Kind != ScalarNode || n.Tag != IntTag {
		return 0, false
	}
	s := n.Value
	base := 10
	body := strings.TrimLeft(s, "+-")
	if len(body) > 1 && body[0] == '0' && strings.ContainsRune("xXoObB", rune(body[1])) {
		base = 0
	} else {
		s = strings.ReplaceAll(s, "_", "")
	}
	i, err := strconv.ParseInt(s, base, 64)
	return i, err == nil
}

func (d *decoder) structure(n *Node, v reflect.Value) {
	if n.Kind != MapNode {
		d.errorf(n, "want a mapping, got %s", n.describe())
		return
	}
	if pv := v.Addr(); pv.Type().Implements(positionerType) {
		pv.Interface().(Positioner).SetPos(d.file, n.Line)
	}
	info := structInfoOf(v.Type())
	var seen uint64    // bit i: field i was given; structs have < 64 fields
	var guessed uint64 // bit i: an unknown field looked like a typo of field i
	for i := 0; i+1 < len(n.Items); i += 2 {
		k, val := n.Items[i], n.Items[i+1]
		f, ok := info.byName[k.Value]
		if !ok {
			hint, g := info.suggest(k.Value)
			if g != nil {
				guessed |= 1 << g.bit
			}
			d.errorf(k, "unknown field %q%s", k.Value, hint)
			continue
		}
		if seen&(1<<f.bit) != 0 {
			d.push(k.Value, 0)
			d.errorf(k, "field given twice")
			d.pop()
			continue
		}
		seen |= 1 << f.bit
		d.push(k.Value, 0)
		if f.required && val.Kind == ScalarNode && (val.Tag == NullTag || val.Tag == StrTag && val.Value == "") {
			// A required name or reference given as null or "" would
			// leave an object nobody can refer to, or refer to nothing.
			d.errorf(val, "must not be empty")
		} else {
			d.value(val, v.FieldByIndex(f.index))
		}
		d.pop()
	}
	for _, f := range info.fields {
		// A missing field that a misspelt one was meant to be is already
		// reported as the typo.
		if f.required && !d.patch && (seen|guessed)&(1<<f.bit) == 0 {
			d.errorf(n, "missing required field %q", f.name)
		}
	}
}

func (d *decoder) list(n *Node, v reflect.Value) {
	if n.Kind != SeqNode {
		d.errorf(n, "want a list, got %s", n.describe())
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Items), len(n.Items))
	workers := runtime.GOMAXPROCS(0)
	if len(n.Items) < parallelMin || workers < 2 {
		d.elements(n.Items, 0, out)
		v.Set(out)
		return
	}
	// A long list (the VMs of a large estate) is decoded in chunks on all
	// cores. Elements are independent, and each chunk keeps its own
	// errors, appended in order so messages stay sorted.
	chunk := (len(n.Items) + workers - 1) / workers
	subs := make([]*decoder, 0, workers)
	var wg sync.WaitGroup
	for lo := 0; lo < len(n.Items); lo += chunk {
		hi := min(lo+chunk, len(n.Items))
		sub := &decoder{file: d.file, patch: d.patch, path: slices.Clone(d.path)}
		subs = append(subs, sub)
		wg.Go(func() { sub.elements(n.Items[lo:hi], lo, out) })
	}
	wg.Wait()
	for _, sub := range subs {
		d.errs = append(d.errs, sub.errs...)
	}
	v.Set(out)
}

// parallelMin is the list length from which decoding is spread over cores.
const parallelMin = 4096

// elements decodes items into out[first:], giving each new element its
// defaults first.
func (d *decoder) elements(items []*Node, first int, out reflect.Value) {
	et := out.Type().Elem()
	for i, item := range items {
		ev := out.Index(first + i)
		if et.Kind() == reflect.Pointer {
			ev.Set(reflect.New(et.Elem()))
			ev = ev.Elem()
		}
		if pv := ev.Addr(); pv.Type().Implements(defaulterType) {
			pv.Interface().(Defaulter).SetDefaults()
		}
		d.push("", first+i)
		if ev.Kind() == reflect.Struct && item.Kind == ScalarNode && item.Tag == NullTag {
			// "- " or "- null" in a list of objects (VMs, operations):
			// most likely an edit gone wrong, and an object of no fields
			// would otherwise count (a VM of no name).
			d.errorf(item, "empty entry")
		} else {
			d.value(item, ev)
		}
		d.pop()
	}
}

func (d *decoder) mapping(n *Node, v reflect.Value) {
	if n.Kind != MapNode {
		d.errorf(n, "want a mapping, got %s", n.describe())
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String && !reflect.PointerTo(t.Key()).Implements(textUnmarshalerType) {
		d.errorf(n, "cannot read into %s", t)
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Items)/2)
	for i := 0; i+1 < len(n.Items); i += 2 {
		k, val := n.Items[i], n.Items[i+1]
		kv := reflect.New(t.Key()).Elem()
		d.push(k.Value, 0)
		if reflect.PointerTo(t.Key()).Implements(textUnmarshalerType) {
			if err := kv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(k.Value)); err != nil {
				d.errorf(k, "%v", err)
				d.pop()
				continue
			}
		} else {
			kv.SetString(k.Value)
		}
		if m.MapIndex(kv).IsValid() {
			d.errorf(k, "key given twice")
			d.pop()
			continue
		}
		ev := reflect.New(t.Elem()).Elem()
		d.value(val, ev)
		d.pop()
		m.SetMapIndex(kv, ev)
	}
	v.Set(m)
}

type fieldInfo struct {
	name     string
	index    []int
	required bool
	bit      uint
}

type structInfo struct {
	fields []*fieldInfo
	byName map[string]*fieldInfo
}

var structInfos sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]*fieldInfo{}}
	for _, sf := range reflect.VisibleFields(t) {
		tag := sf.Tag.Get("yaml")
		if tag == "-" || tag == "" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := &fieldInfo{name: name, index: sf.Index, required: opts == "required", bit: uint(len(si.fields))}
		si.fields = append(si.fields, f)
		si.byName[name] = f
	}
	if len(si.fields) > 64 {
		panic("syntax: struct " + t.String() + " has more than 64 fields")
	}
	structInfos.Store(t, si)
	return si
}

// suggest returns a "did you mean" hint for a misspelt field name.
func (si *structInfo) suggest(name string) (string, *fieldInfo) {
	var best *fieldInfo
	bestD := 3
	for _, f := range si.fields {
		if d := editDistance(strings.ToLower(name), strings.ToLower(f.name)); d < bestD {
			best, bestD = f, d
		}
	}
	if best != nil {
		return fmt.Sprintf(" (did you mean %q?)", best.name), best
	}
	names := make([]string, 0, len(si.fields))
	for _, f := range si.fields {
		names = append(names, f.name)
	}
	sort.Strings(names)
	return " (known fields: " + strings.Join(names, ", ") + ")", nil
}

// editDistance is the Damerau-Levenshtein distance (with transpositions),
// for short field names.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
