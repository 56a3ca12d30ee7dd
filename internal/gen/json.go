package gen

import (
	"io"
	"slices"
	"strconv"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/jsonstr"
)

// The estate is written by hand rather than through encoding/json: the
// field names and forms are those of documents.md (image references as
// "name@3", ports as numbers, ranges as "lo-hi"), fields that are unknown
// are left out, and every element of a list is on a line of its own so that
// the loader's line numbers point at one object. Each line is built in one
// buffer and handed to the writer, which keeps 100k VMs well under a second.

type jsonWriter struct {
	w   io.Writer
	b   []byte
	err error
}

// flush hands the buffered line(s) to the writer.
func (j *jsonWriter) flush() {
	if j.err == nil && len(j.b) > 0 {
		_, j.err = j.w.Write(j.b)
	}
	j.b = j.b[:0]
}

// list writes `"key":[` then n elements, one per line, then `]`.
func (j *jsonWriter) list(key string, n int, elem func(b []byte, i int) []byte) {
	j.b = append(j.b, ",\n"...)
	j.b = jsonstr.Append(j.b, key)
	j.b = append(j.b, ":["...)
	for i := range n {
		if i > 0 {
			j.b = append(j.b, ',')
		}
		j.b = append(j.b, '\n')
		j.b = elem(j.b, i)
		if len(j.b) > 32<<10 {
			j.flush()
		}
	}
	j.b = append(j.b, ']')
}

func writeEstate(w io.Writer, g *world, sideFiles bool) error {
	e := g.e
	j := &jsonWriter{w: w, b: make([]byte, 0, 64<<10)}
	j.b = append(j.b, `{"apiVersion":"vguard.dev/v1","kind":"Estate","metadata":{"name":`...)
	j.b = jsonstr.Append(j.b, e.Meta.Name)
	j.b = append(j.b, '}')
	j.list("zones", len(e.Zones), func(b []byte, i int) []byte { return appendZone(b, e.Zones[i]) })
	j.list("networks", len(e.Networks), func(b []byte, i int) []byte { return appendNetwork(b, e.Networks[i]) })
	j.list("hypervisors", len(e.Hypervisors), func(b []byte, i int) []byte { return appendHypervisor(b, e.Hypervisors[i]) })
	j.list("datastores", len(e.Datastores), func(b []byte, i int) []byte { return appendDatastore(b, e.Datastores[i]) })
	j.list("images", len(e.Images), func(b []byte, i int) []byte { return appendImage(b, e.Images[i], sideFiles) })
	j.list("vms", len(e.VMs), func(b []byte, i int) []byte { return appendVM(b, e.VMs[i], sideFiles) })
	j.list("services", len(e.Services), func(b []byte, i int) []byte { return appendService(b, e.Services[i]) })
	j.list("firewalls", len(e.Firewalls), func(b []byte, i int) []byte { return appendFirewall(b, e.Firewalls[i]) })
	j.b = append(j.b, "}\n"...)
	j.flush()
	return j.err
}

// field appends `,"key":"value"` (or without the comma for the first field).
func field(b []byte, first bool, key, value string) []byte {
	if !first {
		b = append(b, ',')
	}
	b = jsonstr.Append(b, key)
	b = append(b, ':')
	return jsonstr.Append(b, value)
}

func intField(b []byte, key string, v int64) []byte {
	b = append(b, ',')
	b = jsonstr.Append(b, key)
	b = append(b, ':')
	return strconv.AppendInt(b, v, 10)
}

func boolField(b []byte, key string, v bool) []byte {
	b = append(b, ',')
	b = jsonstr.Append(b, key)
	b = append(b, ':')
	return strconv.AppendBool(b, v)
}

func stringsField(b []byte, key string, vs []string) []byte {
	b = append(b, ',')
	b = jsonstr.Append(b, key)
	b = append(b, ":["...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.Append(b, v)
	}
	return append(b, ']')
}

// labelsField appends the labels with sorted keys (map order is random).
func labelsField(b []byte, key string, m map[string]string) []byte {
	b = append(b, ',')
	b = jsonstr.Append(b, key)
	b = append(b, ":{"...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		b = field(b, i == 0, k, m[k])
	}
	return append(b, '}')
}

func portsField(b []byte, ps []estate.PortRange) []byte {
	b = append(b, `,"ports":[`...)
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		if p.Lo == p.Hi {
			b = strconv.AppendInt(b, int64(p.Lo), 10)
		} else {
			b = jsonstr.Append(b, p.String())
		}
	}
	return append(b, ']')
}

func appendZone(b []byte, z *estate.Zone) []byte {
	b = append(b, '{')
	b = field(b, true, "name", z.Name)
	b = field(b, false, "exposure", z.Exposure.String())
	return append(b, '}')
}

func appendNetwork(b []byte, n *estate.Network) []byte {
	b = append(b, '{')
	b = field(b, true, "name", n.Name)
	b = field(b, false, "zone", n.Zone)
	if n.VLAN != nil {
		b = intField(b, "vlan", int64(*n.VLAN))
	}
	b = field(b, false, "purpose", n.Purpose.String())
	return append(b, '}')
}

func appendHypervisor(b []byte, h *estate.Hypervisor) []byte {
	b = append(b, '{')
	b = field(b, true, "name", h.Name)
	b = field(b, false, "cluster", h.Cluster)
	b = field(b, false, "failureDomain", h.FailureDomain)
	if c := h.Capacity; c != nil {
		b = append(b, `,"capacity":{"cpus":`...)
		b = strconv.AppendInt(b, int64(c.CPUs), 10)
		b = append(b, `,"memoryMiB":`...)
		b = strconv.AppendInt(b, c.MemoryMiB, 10)
		b = append(b, '}')
	}
	if h.ManagementNetwork != "" {
		b = field(b, false, "managementNetwork", h.ManagementNetwork)
	}
	if h.MigrationNetwork != "" {
		b = field(b, false, "migrationNetwork", h.MigrationNetwork)
	}
	b = boolField(b, "migrationEncrypted", h.MigrationEncrypted)
	if len(h.Labels) > 0 {
		b = labelsField(b, "labels", h.Labels)
	}
	return append(b, '}')
}

func appendDatastore(b []byte, d *estate.Datastore) []byte {
	b = append(b, '{')
	b = field(b, true, "name", d.Name)
	b = field(b, false, "classification", d.Classification.String())
	if d.Owner != "" {
		b = field(b, false, "owner", d.Owner)
	}
	b = field(b, false, "writers", d.Writers.String())
	if len(d.AuthorizedApps) > 0 {
		b = stringsField(b, "authorizedApps", d.AuthorizedApps)
	}
	return append(b, '}')
}

func appendImage(b []byte, im *estate.Image, sideFiles bool) []byte {
	b = append(b, '{')
	b = field(b, true, "name", im.Name)
	b = intField(b, "version", int64(im.Version))
	b = boolField(b, "master", im.Master)
	if sideFiles && im.Manifest != "" {
		b = field(b, false, "manifest", im.Manifest)
	}
	if sideFiles && im.Scan != "" {
		b = field(b, false, "scan", im.Scan)
	}
	return append(b, '}')
}

func appendVM(b []byte, vm *estate.VM, sideFiles bool) []byte {
	b = append(b, '{')
	b = field(b, true, "name", vm.Name)
	b = field(b, false, "hypervisor", vm.Hypervisor)
	if vm.Owner != "" {
		b = field(b, false, "owner", vm.Owner)
	}
	if vm.App != "" {
		b = field(b, false, "app", vm.App)
	}
	b = field(b, false, "environment", vm.Environment.String())
	b = field(b, false, "securityLevel", vm.SecurityLevel.String())
	if vm.HomeZone != "" {
		b = field(b, false, "homeZone", vm.HomeZone)
	}
	if vm.Gateway {
		b = boolField(b, "gateway", true)
	}
	b = append(b, `,"nics":[`...)
	for i, n := range vm.NICs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = field(b, true, "network", n.Network)
		if n.MAC != "" {
			b = field(b, false, "mac", n.MAC)
		}
		if len(n.Ports) > 0 {
			b = portsField(b, n.Ports)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if id := &vm.Identity; !id.Empty() {
		b = append(b, `,"identity":{`...)
		first := true
		for _, kv := range [3][2]string{{"uuid", id.UUID}, {"machineId", id.MachineID}, {"hostname", id.Hostname}} {
			if kv[1] != "" {
				b = field(b, first, kv[0], kv[1])
				first = false
			}
		}
		if len(id.SSHHostKeys) > 0 {
			if first {
				b = append(b, `"sshHostKeys":[`...)
			} else {
				b = append(b, `,"sshHostKeys":[`...)
			}
			for i, k := range id.SSHHostKeys {
				if i > 0 {
					b = append(b, ',')
				}
				b = jsonstr.Append(b, k)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if vm.Image != nil {
		b = field(b, false, "image", vm.Image.String())
	}
	if sideFiles && vm.Manifest != "" {
		b = field(b, false, "manifest", vm.Manifest)
	}
	if sideFiles && vm.Scan != "" {
		b = field(b, false, "scan", vm.Scan)
	}
	if len(vm.Credentials) > 0 {
		b = append(b, `,"credentials":[`...)
		for i, c := range vm.Credentials {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = field(b, true, "datastore", c.Datastore)
			b = field(b, false, "access", c.Access.String())
			if c.Path != "" {
				b = field(b, false, "path", c.Path)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r := vm.Resources; r != nil {
		b = append(b, `,"resources":{"cpus":`...)
		b = strconv.AppendInt(b, int64(r.CPUs), 10)
		b = intField(b, "memoryMiB", r.MemoryMiB)
		if r.Limited != nil {
			b = boolField(b, "limited", *r.Limited)
		}
		b = append(b, '}')
	}
	if len(vm.Labels) > 0 {
		b = labelsField(b, "labels", vm.Labels)
	}
	return append(b, '}')
}

func appendService(b []byte, s *estate.Service) []byte {
	b = append(b, '{')
	b = field(b, true, "name", s.Name)
	if s.Selector != nil {
		b = append(b, `,"selector":{`...)
		first := true
		if s.Selector.App != "" {
			b = field(b, first, "app", s.Selector.App)
			first = false
		}
		if s.Selector.Owner != "" {
			b = field(b, first, "owner", s.Selector.Owner)
			first = false
		}
		if s.Selector.Environment != 0 {
			b = field(b, first, "environment", s.Selector.Environment.String())
		}
		b = append(b, '}')
	} else {
		b = stringsField(b, "members", s.Members)
	}
	b = intField(b, "minAvailable", int64(s.MinAvailable))
	b = intField(b, "maxUnavailable", int64(s.MaxUnavailable))
	b = field(b, false, "spread", s.Spread.String())
	b = field(b, false, "criticality", s.Criticality.String())
	return append(b, '}')
}

func appendFirewall(b []byte, f *estate.Firewall) []byte {
	b = append(b, '{')
	b = field(b, true, "name", f.Name)
	b = stringsField(b, "protects", f.Protects)
	b = field(b, false, "defaultAction", f.DefaultAction.String())
	b = append(b, `,"rules":[`...)
	for i, r := range f.Rules {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = field(b, true, "from", r.From)
		if len(r.Ports) > 0 {
			b = portsField(b, r.Ports)
		}
		b = field(b, false, "action", r.Action.String())
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
