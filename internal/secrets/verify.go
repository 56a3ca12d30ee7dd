package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"regexp"
	"strings"
)

// This file holds the tests that built-in rules make of a match beyond
// their regex: mostly telling a real value from a placeholder, a
// reference to somewhere else, or code.

// cryptHash matches a crypt(3) hash ($6$salt$hash, $y$j9T$salt$hash,
// $2b$12$..., $sha1$rounds$salt$hash, $md5$salt$$hash, passlib's
// $pbkdf2-sha256$29000$salt$hash and $argon2id$v=19$m=...$salt$hash), which is a value
// even though it starts with '$'. The ids are listed and a salt field is
// required: a shell's $prefix$filename is two variables, not a hash.
var cryptHash = regexp.MustCompile(`^\$(?:1|2[abxy]?|3|5|6|7|y|gy|md5|sha1|apr1|sm3|pbkdf2(?:-sha(?:1|256|512))?|argon2(?:i|d|id)|scrypt)(?:,rounds=[0-9]+)?\$[./0-9A-Za-z=,+-]*\$[./0-9A-Za-z$=,+-]{8,}$`)

// placeholderWords are values that stand for a secret rather than being
// one: documentation, templates and empty settings.
var placeholderWords = map[string]bool{
	"password": true, "passwd": true, "passphrase": true, "secret": true, "pass": true, "pwd": true,
	"changeme": true, "changeit": true, "change_me": true, "change-me": true,
	"none": true, "null": true, "nil": true, "true": true, "false": true, "yes": true, "no": true,
	"undefined": true, "empty": true, "string": true, "str": true, "bytes": true, "required": true,
	"optional": true, "random": true, "test": true, "testing": true, "dummy": true, "example": true,
	"sample": true, "placeholder": true, "redacted": true, "hidden": true, "removed": true,
	"secret123": true, "password123": true, "mypassword": true, "yourpassword": true, "mysecret": true,
	"foo": true, "bar": true, "foobar": true, "todo": true, "fixme": true, "xxx": true, "tbd": true,
	"omitted": true, "data+omitted": true, "masked": true, "unset": true, "notset": true, "prompt": true,
	"input": true, "value": true, "default": true, "off": true, "on": true,
	"define": true, "undef": true, // Perl's Config.pm: d_pwpasswd='define'
	// Google's published password of every P12 service-account key it
	// issued, and the classic placeholder of examples.
	"notasecret": true, "xyzzy": true,
	// libvirt's qemu.conf sample vnc_password and spice_password.
	"xyz12345": true,
}

// placeholderParts mark a value as a stand-in wherever they occur in it.
var placeholderParts = []string{
	"example", "placeholder", "changeme", "change_me", "change-me", "your_", "your-", "yourpass",
	"yoursecret", "password_here", "secret_here", "_here", "-here", "redacted", "dummy", "xxxxx", "*****",
	"<", ">", "{{", "}}",
}

// placeholder reports whether v is not a secret but a stand-in for one:
// empty, a reference to a variable or file ($VAR, ${VAR}, $(cmd),
// %(name)s, %VAR%, @VAR@, {{ var }}, <password>, ENC(...), vault:...), a
// word from placeholderWords, a run of one character (xxxx, ****), or a
// value containing "example", "your_", "changeme" and the like.
func placeholder(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	s := strings.ToLower(string(v))
	switch s[0] {
	case '$':
		return !cryptHash.MatchString(string(v))
	case '%', '@', '<', '{', '[', '(':
		return true
	}
	if s[0] == '#' && len(s) > 1 && s[1] == '{' {
		return true
	}
	// Stripe test-mode and publishable keys reach no real money or data.
	for _, p := range []string{"sk_test_", "rk_test_", "pk_test_", "pk_live_", "enc(", "vault:", "!vault", "env:", "file:", "secret:", "secretref:", "ref+", "op://", "aws:secretsmanager", "arn:aws:secretsmanager"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if placeholderWords[s] {
		return true
	}
	same := true
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			same = false
			break
		}
	}
	if same {
		return true
	}
	for _, p := range placeholderParts {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// realValue is the common test: at least min bytes and not a placeholder.
func realValue(min int) func(c *candidate) bool {
	return func(c *candidate) bool { return len(c.secret) >= min && !placeholder(c.secret) }
}

// assignmentSuffixes may follow the keyword in a key that names a secret
// (db_password, secret_key_base, client_secret, PASSWORD2); any other
// suffix names something about the secret (password_file,
// password_min_length, secret_name) and is not one.
var assignmentSuffixes = map[string]bool{
	"": true, "key": true, "_key": true, "-key": true, ".key": true, "_key_base": true, "keybase": true,
	"_value": true, ".value": true, "value": true, "_hash": true, "hash": true, "_plain": true,
	"_plaintext": true, "_token": true, "token": true, "_b64": true, "_base64": true, "_access_key": true,
	"_raw": true, "_clear": true, "_cleartext": true, "_string": true, "_str": true,
}

// assignmentPrefixes, as the last word before the keyword, mark a setting
// about passwords rather than one (show_password, ask_password).
var assignmentPrefixes = map[string]bool{
	"show": true, "ask": true, "check": true, "require": true, "requires": true, "use": true,
	"enable": true, "disable": true, "no": true, "allow": true, "prompt": true, "hide": true,
	"reset": true, "forgot": true, "empty": true, "min": true, "max": true, "validate": true,
	"verify": true, "store": true, "save": true, "remember": true, "has": true, "is": true,
	"get": true, "set": true, "read": true, "print": true, "cache": true, "with": true, "without": true,
	"need": true, "needs": true, "skip": true, "send": true, "encrypt": true, "hash": true, "plain": true,
}

var secretKeywords = []string{"password", "passwd", "passphrase", "secret", "pwd"}

// isIdentByte is a byte of a key in an assignment.
func isIdentByte(b byte) bool {
	return b == '_' || b == '.' || b == '-' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// keyOK judges the key of an assignment (the identifier the match starts
// with) by what precedes and follows the secret keyword in it.
func keyOK(match []byte) bool {
	i := 0
	for i < len(match) && isIdentByte(match[i]) {
		i++
	}
	key := strings.ToLower(string(match[:i]))
	best, kw := -1, ""
	for _, k := range secretKeywords {
		if j := strings.LastIndex(key, k); j > best || (j == best && j >= 0 && len(k) > len(kw)) {
			best, kw = j, k
		}
	}
	if best < 0 {
		return false
	}
	suffix := key[best+len(kw):]
	digits := strings.TrimLeft(suffix, "_-.0123456789")
	if !assignmentSuffixes[suffix] && digits != "" {
		return false
	}
	prefix := strings.TrimRight(key[:best], "_-.")
	if k := strings.LastIndexAny(prefix, "_-."); k >= 0 {
		prefix = prefix[k+1:]
	}
	return !assignmentPrefixes[prefix]
}

// colonSeparated reports whether an assignment match uses ':' (YAML,
// JSON, prose) rather than '=' between key and value.
func colonSeparated(match []byte) bool {
	i := 0
	for i < len(match) && (isIdentByte(match[i]) || match[i] == '"' || match[i] == '\'' || match[i] == ']' || match[i] == ' ' || match[i] == '\t') {
		i++
	}
	return i < len(match) && match[i] == ':' && (i+1 >= len(match) || match[i+1] != '=')
}

// dottedIdent matches code such as self.password or os.environ.
var dottedIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// verifyAssignment judges a `key = value` match of the password rule.
// Group 3 is the unquoted value; a quoted one is taken as it is.
func verifyAssignment(c *candidate) bool {
	if !keyOK(c.match) {
		return false
	}
	if c.group == 3 {
		if !unquotedOK(c) {
			return false
		}
		core := c.secret
		takeClosers(c)
		// A value closing a call on an earlier line (pwd=None)) is
		// judged without its closers.
		if c.grown > 0 && (len(core) < 4 || placeholder(core)) {
			return false
		}
		if !codeFile.MatchString(c.path) && len(bytes.TrimLeft(c.lead, " \t")) == 0 && !colonSeparated(c.match) {
			if eq := bytes.IndexByte(c.match, '='); eq > 0 && (c.match[eq-1] == ' ' || c.match[eq-1] == '\t' || iniFile.MatchString(c.path)) {
				comments := ";#"
				if strings.HasSuffix(c.path, ".properties") {
					comments = "" // Java properties have no inline comments
				}
				toLineEnd(c, comments)
			}
		}
	}
	if len(c.secret) < 4 || placeholder(c.secret) {
		return false
	}
	// A value that repeats its key (_CLIENT_SECRET = 'CLIENT_SECRET') is
	// a template's stand-in.
	key := c.match
	for i, b := range key {
		if !isIdentByte(b) {
			key = key[:i]
			break
		}
	}
	return !bytes.EqualFold(bytes.Trim(key, "_"), bytes.Trim(c.secret, "_"))
}

// codeFile: source files, where an unquoted value is a name or an
// expression (a password there is a quoted literal).
var codeFile = regexp.MustCompile(`\.(?:py[iw]?|vim|rb|[cm]?js|ts|go|java|kt|scala|groovy|c|h|cc|cpp|hpp|cs|lua|rs|swift|pl|pm)$`)

// iniFile: files whose format takes the rest of a key = value line as
// the value, blanks included (INI, MySQL option files, Java properties,
// .env as docker compose and dotenv read it).
// NetworkManager keyfiles and yum/dnf .repo files are GKeyFile/INI.
var iniFile = regexp.MustCompile(`(?:\.(?:ini|cnf|cfg|conf|properties|env|nmconnection|repo)|/\.env(?:\.[a-z]+)?|/NetworkManager/system-connections/[^/]+)$`)

// nextAssignment finds another key=value after a blank.
var nextAssignment = regexp.MustCompile(`[ \t][A-Za-z_][A-Za-z0-9_.-]*=`)

// codeName matches a name in code: self.password, password_mgr, vim's
// s:netrw_passwd and a:dict.istemp.
var codeName = regexp.MustCompile(`^(?:[a-z]:)?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// rstRole matches the start of a reStructuredText role (:py:data:`x`).
var rstRole = regexp.MustCompile("^(?::[A-Za-z0-9_.-]+)+:`")

// indexExpr matches the start of an index expression (auth[2],
// os.environ['PW']).
var indexExpr = regexp.MustCompile(`^(?:[a-z]:)?[A-Za-z_][A-Za-z0-9_.]*\[`)

// unquotedOK judges an unquoted value (group 3) of the password rule:
// false when it is code rather than a literal.
func unquotedOK(c *candidate) bool {
	v := c.secret
	// "PGPASSWORD= psql ...": an empty shell assignment before a command.
	if eq := bytes.IndexByte(c.match, '='); eq > 0 && !colonSeparated(c.match) {
		before, after := c.match[eq-1], byte(0)
		if eq+1 < len(c.match) {
			after = c.match[eq+1]
		}
		if before != ' ' && before != '\t' && (after == ' ' || after == '\t') {
			return false
		}
	}
	// A value closing a call or a block (pwd=None): code, judged without
	// its closing brackets.
	if t := bytes.TrimRight(v, "):}]"); len(t) < len(v) && (len(t) < 4 || placeholder(t)) {
		return false
	}
	// A '#' after a YAML ':' starts a comment (password: #rotated);
	// after '=' it is the value's first byte.
	if v[0] == '#' && colonSeparated(c.match) {
		return false
	}
	// A Sphinx role in a docstring (:type passphrase: :py:data:`bytes`).
	if v[0] == ':' && rstRole.Match(v) {
		return false
	}
	switch c.next {
	case '(', '[', '.', '{':
		return false // a call, an index or an expression: code
	}
	if v[0] == '/' || dottedIdent.Match(v) || bytes.IndexByte(v, '(') >= 0 || indexExpr.Match(v) {
		return false
	}
	// A chained assignment (userid = passwd = acct = ''): code.
	if r := bytes.TrimLeft(c.rest, " \t"); len(r) > 0 && r[0] == '=' && (len(r) == 1 || r[1] != '=') {
		return false
	}
	// A bare name is a variable where the language quotes its strings:
	// in a source file, in a tuple assignment (self.user, self.password =
	// user, password), assigned to an attribute (self.passwd =
	// password_mgr) or after a declaring keyword (vim's let).
	if codeName.Match(v) && (codeContext(c) || codeFile.MatchString(c.path) && nameLike(v)) {
		return false
	}
	// "key: value more words" is prose or a log line (dpkg's
	// "install base-passwd:amd64 <none> 3.6.1"), not a YAML setting,
	// whose unquoted value would be the whole rest of the line.
	// The closing bracket of a flow mapping ({user: hr, password: x})
	// ends the value, not the line; a comma after it is code
	// (Password: parts[4],) or prose.
	if colonSeparated(c.match) {
		if rest := bytes.TrimLeft(bytes.TrimSpace(c.rest), ")]}"); len(rest) > 0 && rest[0] != '#' {
			return false
		}
	}
	return true
}

// nameLike tells a name a programmer would write (password_mgr,
// credentials, s:netrw_passwd) from a literal left unquoted, which
// mixes in digits (z2oCtIsjhvNK4p) and is not valid code but is still a
// password.
func nameLike(v []byte) bool {
	return bytes.IndexAny(v, "_:.") >= 0 || bytes.IndexAny(v, "0123456789") < 0
}

// codeContext: in an `=` assignment, the key is an attribute of an object
// (self., this.), the assignment is of a tuple (self.user, self.password =
// user, password), or a keyword declares the key (let, var, const, local).
// None of these holds for an assignment inside a string opened before it
// (var x = "password=..."), which is text, nor for a comma joined to a
// key=value with no blank (mount options username=hr,password=x, helm's
// --set a=b,db.password=x, virt-install's vnc,password=x): a list of
// options, not a tuple.
func codeContext(c *candidate) bool {
	if colonSeparated(c.match) {
		return false
	}
	if openQuote(c.lead, c.match[:valueStart(c)]) != 0 {
		return false
	}
	eq := bytes.IndexByte(c.match, '=')
	spaced := eq > 0 && (c.match[eq-1] == ' ' || c.match[eq-1] == '\t')
	if c.next == ',' {
		if r := bytes.TrimLeft(c.rest[1:], " \t"); len(r) > 0 && isIdentByte(r[0]) && !startsKeyValue(c.rest[1:]) {
			return true
		}
	}
	key := strings.ToLower(string(c.match))
	for _, p := range []string{"self.", "this.", "cls.", "@"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	lead := bytes.TrimSpace(c.lead)
	if len(lead) > 0 && lead[len(lead)-1] == ',' && (c.lead[len(c.lead)-1] != ',' || spaced) {
		return true
	}
	for _, k := range []string{"let ", "var ", "const ", "local ", "my "} {
		if bytes.HasPrefix(lead, []byte(k)) || string(lead) == strings.TrimSpace(k) {
			// Shell's local takes no blank around '=' and assigns a
			// literal (local db_password=Bk9p...); Perl's my and Lua's
			// local are written with blanks.
			if (k == "local " || k == "my ") && !spaced {
				return false
			}
			return true
		}
	}
	return false
}

// startsKeyValue reports whether b starts with key= (no blank before '=').
func startsKeyValue(b []byte) bool {
	i := 0
	for i < len(b) && isIdentByte(b[i]) {
		i++
	}
	return i > 0 && i < len(b) && b[i] == '='
}

// takeClosers takes a ')', ']' or '}' right after an unquoted value into
// it (DB_PASSWORD=EnvPw9x}), which the regex leaves out, unless it closes
// a bracket opened before the value on the line ({user: hr, password: x},
// f(password=x)): the value's last byte, not the syntax around it.
func takeClosers(c *candidate) {
	if len(c.rest) == 0 {
		return
	}
	if b := c.rest[0]; b != ')' && b != ']' && b != '}' {
		return
	}
	var open []byte // the brackets still open, innermost last
	scan := func(b []byte) {
		for _, x := range b {
			switch x {
			case '(', '[', '{':
				open = append(open, x)
			case ')', ']', '}':
				if n := len(open); n > 0 && open[n-1] == opener(x) {
					open = open[:n-1]
				}
			}
		}
	}
	scan(c.lead)
	scan(c.match[:valueStart(c)])
	before := len(open)
	scan(c.secret)
	n := 0
	for n < len(c.rest) {
		x := c.rest[n]
		if x != ')' && x != ']' && x != '}' {
			break
		}
		if k := len(open); k > 0 && open[k-1] == opener(x) {
			if k <= before {
				break // closes what was open before the value
			}
			open = open[:k-1]
		}
		n++
	}
	// After them the line ends, a blank, the quote of a string that holds
	// the assignment ("password=Xq7)"), or the separator of the next
	// key=value where the value was cut (fstab's password=x),uid=1000, a
	// URL's &next=).
	if n > 0 && (n == len(c.rest) || strings.IndexByte(" \t\r\"'`,;&", c.rest[n]) >= 0) {
		c.secret = c.secret[:len(c.secret)+n]
		c.grown = n
	}
}

// valueStart is the offset of the value in the match.
func valueStart(c *candidate) int {
	return len(c.match) - len(c.secret) + c.grown
}

func opener(closer byte) byte {
	switch closer {
	case ')':
		return '('
	case ']':
		return '['
	}
	return '{'
}

// toLineEnd takes an unquoted value on to the end of its line, where the
// file's format makes the rest of the line the value (password = correct
// horse battery staple): up to an inline comment (a blank and one of
// comments) and without trailing blanks. The value must have ended at a
// blank.
func toLineEnd(c *candidate, comments string) {
	r := c.rest[c.grown:]
	if len(r) == 0 || (r[0] != ' ' && r[0] != '\t') {
		return
	}
	if comments != "" {
		for i := 1; i < len(r); i++ {
			if (r[i-1] == ' ' || r[i-1] == '\t') && strings.IndexByte(comments, r[i]) >= 0 {
				r = r[:i]
				break
			}
		}
	}
	r = bytes.TrimRight(r, " \t\r")
	if len(r) == 0 || nextAssignment.Match(r) {
		return // several assignments on one line: each value ends at a blank
	}
	if strings.IndexByte(comments, c.secret[0]) >= 0 {
		return // a comment after an empty value (secret = # disable PBM)
	}
	// A phrase naming what it stands for (openssl.cnf's challengePassword
	// = A challenge password) is a prompt, not a passphrase.
	lower := bytes.ToLower(r)
	for _, k := range secretKeywords {
		if bytes.Contains(lower, []byte(k)) {
			return
		}
	}
	c.secret = c.secret[:len(c.secret)+len(r)]
}

// odbcContext are keys of which at least one must share the line with an
// ODBC/ADO Pwd=, so that it is a connection string.
var odbcContext = []string{"server=", "data source=", "uid=", "user id=", "driver=", "dsn=", "database=", "initial catalog=", "host=", "user=", "username="}

func verifyODBC(c *candidate) bool {
	if !bytes.Contains(c.line, []byte(";")) || len(c.secret) < 3 || placeholder(c.secret) {
		return false
	}
	lower := bytes.ToLower(c.line)
	if bytes.Contains(lower, []byte("jdbc:")) {
		return false // a JDBC URL's ;password=: jdbc-password's
	}
	// The ';' before the key ends an HTML entity (a URL's &amp;password=
	// in markup): a query parameter, password-assignment's, which ends the
	// value at the next &amp;.
	if lead := bytes.ToLower(c.lead); bytes.HasSuffix(lead, []byte("&amp;")) || bytes.HasSuffix(lead, []byte("&#38;")) ||
		bytes.HasSuffix(lead, []byte("&amp")) || bytes.HasSuffix(lead, []byte("&#38")) {
		return false
	}
	for _, k := range odbcContext {
		if bytes.Contains(lower, []byte(k)) {
			return true
		}
	}
	return false
}

// verifyMyCnf: a MySQL option file's password runs to the end of its
// line, up to a '#' comment.
func verifyMyCnf(c *candidate) bool {
	if c.group == 3 {
		toLineEnd(c, "#")
	}
	return !placeholder(c.secret)
}

// verifyURLCredentials: a URL's password (group 2) and its user (group 1)
// are real values, not a documentation placeholder (user:password@,
// foo:bar@).
func verifyURLCredentials(c *candidate) bool {
	if len(c.secret) < 4 || placeholder(c.secret) {
		return false
	}
	i := bytes.Index(c.match, []byte("://"))
	user, _, _ := bytes.Cut(c.match[i+3:], []byte(":"))
	host := c.match[bytes.LastIndexByte(c.match, '@')+1:]
	return !placeholder(user) && !placeholder(host) && !bytes.EqualFold(user, []byte("user")) && !bytes.EqualFold(user, []byte("username"))
}

// verifyNetrc: a netrc password, not in a comment line.
func verifyNetrc(c *candidate) bool {
	line := bytes.TrimLeft(c.line, " \t")
	return len(line) > 0 && line[0] != '#' && !placeholder(c.secret)
}

// verifyDockerAuth: a config.json "auth" is base64 of "user:password".
func verifyDockerAuth(c *candidate) bool {
	if string(c.secret) == DockerAuthMarker {
		return false // a sanitizer's marker
	}
	if bytes.Contains(c.match, []byte("identitytoken")) || bytes.Contains(c.match, []byte("IdentityToken")) {
		return len(c.secret) >= 16 && !placeholder(c.secret)
	}
	dec, err := base64.StdEncoding.DecodeString(string(c.secret))
	if err != nil {
		return false
	}
	user, pass, ok := bytes.Cut(dec, []byte(":"))
	return ok && len(user) > 0 && len(pass) > 0 && !placeholder(pass)
}

// verifyKubeKey: client-key-data is base64 of a PEM private key (not of
// the marker a sanitizer writes there).
func verifyKubeKey(c *candidate) bool {
	dec, err := base64.StdEncoding.DecodeString(string(c.secret))
	return err == nil && bytes.Contains(dec, []byte("PRIVATE KEY")) && !bytes.Contains(dec, []byte(Marker))
}

// verifyJWT: the header must decode to a JSON object naming a signing
// algorithm other than "none".
func verifyJWT(c *candidate) bool {
	h, _, _ := bytes.Cut(c.secret, []byte("."))
	dec, err := base64.RawURLEncoding.DecodeString(string(bytes.TrimRight(h, "=")))
	if err != nil {
		return false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(dec, &hdr) != nil {
		return false
	}
	return hdr.Alg != "" && !strings.EqualFold(hdr.Alg, "none")
}

// verifyPEMBody: a private key's body is printable text holding at least
// 64 base64 characters, so a header or an elided example ("...") is not
// taken for a key.
func verifyPEMBody(c *candidate) bool {
	n := 0
	for _, b := range c.secret {
		switch {
		case b == '\n' || b == '\r' || b == '\t':
		case b < ' ' || b >= 0x7f:
			return false
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '+', b == '/':
			n++
		}
	}
	return n >= 64 && !bytes.Contains(c.secret, []byte("...")) && pemIndentOK(c)
}

// pemIndentOK: every body line and the END line of a PEM block carry the
// indentation of its first body line (none, or a YAML block scalar's).
func pemIndentOK(c *candidate) bool {
	indent := c.line[:len(c.line)-len(bytes.TrimLeft(c.line, " \t"))]
	lines := bytes.Split(c.secret, []byte("\n"))
	if i := bytes.LastIndexByte(c.match, '\n'); i >= 0 {
		lines = append(lines[1:], c.match[i+1:]) // the END line
	}
	for _, l := range lines {
		if !bytes.HasPrefix(l, indent) || len(l) > len(indent) && (l[len(indent)] == ' ' || l[len(indent)] == '\t') {
			return false
		}
	}
	return true
}

// notBlank: a file holding more than blanks (an empty password file
// holds no password) and other than a sanitizer's marker.
func notBlank(head []byte) bool {
	v := bytes.TrimSpace(head)
	return len(v) > 0 && string(v) != Marker
}

// isGnuPGKey recognises a key of GnuPG's store: the extended format's
// "Key: (private-key" or "(protected-private-key" (a shadowed key, which
// only points to a smartcard, is not a secret), the canonical
// S-expression of older versions, or a non-empty GnuPG 1 secring.gpg
// (an OpenPGP secret-key packet, tag 5, first).
func isGnuPGKey(head []byte) bool {
	for _, p := range []string{"(private-key", "(protected-private-key", "(11:private-key", "(21:protected-private-key"} {
		if bytes.Contains(head, []byte(p)) {
			return true
		}
	}
	return len(head) > 0 && head[0]&0x80 != 0 && (head[0]&0x40 == 0 && (head[0]>>2)&0x0f == 5 || head[0]&0x40 != 0 && head[0]&0x3f == 5)
}

// isKeytab recognises a Kerberos keytab (MIT format version 2, as written
// by ktutil and kadmin): the bytes 0x05 0x02, then a first entry whose
// length, principal component count and realm are plausible.
func isKeytab(head []byte) bool {
	if len(head) < 12 || head[0] != 0x05 || head[1] != 0x02 {
		return false
	}
	size := int32(binary.BigEndian.Uint32(head[2:6]))
	if size == 0 {
		return false
	}
	if size < 0 {
		return true // a hole left by a deleted entry: still a keytab
	}
	ncomp := binary.BigEndian.Uint16(head[6:8])
	rlen := int(binary.BigEndian.Uint16(head[8:10]))
	if ncomp == 0 || ncomp > 16 || rlen == 0 || rlen > 256 || int(size) < 4+rlen {
		return false
	}
	if len(head) < 10+rlen {
		return false
	}
	for _, b := range head[10 : 10+rlen] {
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}
