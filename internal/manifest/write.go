package manifest

import (
	"io"
	"strconv"

	"github.com/vguard-dev/vguard/internal/jsonstr"
)

// Marshal returns the manifest as JSON in the one form Write produces.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 64+len(m.Entries)*128)
	return m.appendJSON(buf), nil
}

// Write writes the manifest to w as deterministic JSON: the same manifest
// always gives the same bytes, one entry per line so that manifests kept in
// version control diff line by line. It validates first and writes nothing
// for an invalid manifest.
func (m *Manifest) Write(w io.Writer) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (m *Manifest) appendJSON(buf []byte) []byte {
	buf = append(buf, `{"format":"`+Format+`","entries":[`...)
	for i := range m.Entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		buf = m.Entries[i].appendJSON(buf)
	}
	return append(buf, "\n]}\n"...)
}

// appendJSON writes the entry's fields in the order of cli.md; size and
// sha256 only for files, target only for symlinks.
func (e *Entry) appendJSON(buf []byte) []byte {
	buf = append(buf, `{"path":`...)
	buf = jsonstr.Append(buf, e.Path)
	buf = append(buf, `,"type":"`...)
	buf = append(buf, e.Type.String()...)
	buf = append(buf, `","mode":"`...)
	buf = append(buf, e.Mode.String()...)
	buf = append(buf, `","uid":`...)
	buf = strconv.AppendUint(buf, uint64(e.UID), 10)
	buf = append(buf, `,"gid":`...)
	buf = strconv.AppendUint(buf, uint64(e.GID), 10)
	if e.Type == File {
		buf = append(buf, `,"size":`...)
		buf = strconv.AppendInt(buf, e.Size, 10)
		buf = append(buf, `,"sha256":"`...)
		buf = append(buf, e.SHA256...)
		buf = append(buf, '"')
	}
	if e.Type == Symlink {
		buf = append(buf, `,"target":`...)
		buf = jsonstr.Append(buf, e.Target)
	}
	return append(buf, '}')
}
