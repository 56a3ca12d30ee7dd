package syntax

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

// ParseJSON parses one JSON document. Strings without escapes share memory
// with data, so data must not be modified afterwards.
func ParseJSON(data []byte) (*Node, error) {
	p := &jsonParser{data: data, line: 1}
	p.skipSpace()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, p.errorf("unexpected %q after the JSON document", p.data[p.pos])
	}
	return n, nil
}

// LineError is a syntax error at a line of the input.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

type jsonParser struct {
	data  []byte
	pos   int
	line  int
	arena []Node
	// stack collects the children of the containers being parsed; each
	// container then takes an exact-size slice of them from ptrs, instead
	// of growing its own slice by appends.
	stack []*Node
	ptrs  []*Node
}

// children moves the nodes above mark on the stack into a new slice.
func (p *jsonParser) children(mark int) []*Node {
	n := len(p.stack) - mark
	if n == 0 {
		return nil
	}
	if len(p.ptrs) < n {
		p.ptrs = make([]*Node, max(4096, n))
	}
	out := p.ptrs[:n:n]
	p.ptrs = p.ptrs[n:]
	copy(out, p.stack[mark:])
	clear(p.stack[mark:])
	p.stack = p.stack[:mark]
	return out
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &LineError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// node hands out nodes from chunks: a large estate has millions of them and
// one allocation each would dominate the parse.
func (p *jsonParser) node(k Kind, line int) *Node {
	if len(p.arena) == 0 {
		p.arena = make([]Node, 4096)
	}
	n := &p.arena[0]
	p.arena = p.arena[1:]
	n.Kind, n.Line = k, line
	return n
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '\n':
			p.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		p.pos++
	}
}

func (p *jsonParser) value(depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d", maxDepth)
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		line := p.line
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n := p.node(ScalarNode, line)
		n.Tag, n.Value = StrTag, s
		return n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range [...]struct {
			word string
			tag  Tag
		}{{"true", BoolTag}, {"false", BoolTag}, {"null", NullTag}} {
			if len(p.data)-p.pos >= len(lit.word) && string(p.data[p.pos:p.pos+len(lit.word)]) == lit.word {
				p.pos += len(lit.word)
				n := p.node(ScalarNode, p.line)
				n.Tag, n.Value = lit.tag, lit.word
				return n, nil
			}
		}
		return nil, p.errorf("unexpected %q", rune(c))
	}
}

func (p *jsonParser) object(depth int) (*Node, error) {
	n := p.node(MapNode, p.line)
	mark := len(p.stack)
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected a string key")
		}
		line := p.line
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		key := p.node(ScalarNode, line)
		key.Tag, key.Value = StrTag, k
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after key %q", k)
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.stack = append(p.stack, key, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			n.Items = p.children(mark)
			return n, nil
		default:
			return nil, p.errorf("expected ',' or '}' in an object, got %q", p.data[p.pos])
		}
	}
}

func (p *jsonParser) array(depth int) (*Node, error) {
	n := p.node(SeqNode, p.line)
	mark := len(p.stack)
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.stack = append(p.stack, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			n.Items = p.children(mark)
			return n, nil
		default:
			return nil, p.errorf("expected ',' or ']' in an array, got %q", p.data[p.pos])
		}
	}
}

func (p *jsonParser) number() (*Node, error) {
	start := p.pos
	tag := IntTag
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		s := p.pos
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
		return p.pos - s
	}
	intStart := p.pos
	nd := digits()
	if nd == 0 || (nd > 1 && p.data[intStart] == '0') {
		return nil, p.errorf("malformed number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		tag = FloatTag
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		tag = FloatTag
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	n := p.node(ScalarNode, p.line)
	n.Tag, n.Value = tag, unsafe.String(&p.data[start], p.pos-start)
	return n, nil
}

// str reads a string starting at the opening quote.
func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			s := p.data[start:p.pos]
			p.pos++
			if len(s) == 0 {
				return "", nil
			}
			if !utf8.Valid(s) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return unsafe.String(&s[0], len(s)), nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", p.errorf("control character in a string")
		}
		p.pos++
	}
	return "", p.errorf("unterminated string")
}

// strSlow decodes a string with escapes, from start (after the quote).
func (p *jsonParser) strSlow(start int) (string, error) {
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.pos++
			continue
		}
		p.pos++
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					p.pos += 2
					r2, ok = p.hex4()
					if !ok {
						return "", p.errorf("bad \\u escape")
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("bad escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(v), true
}
