package vm

import (
	"regexp"
	"strings"
)

// debPackage is one version of a Debian package, as a Packages list (or
// `apt-cache show`) describes it.
type debPackage struct {
	Name, Version string
	// Depends is the raw Depends field.
	Depends string
	// Suite is the suite whose list it came from ("bookworm-security").
	Suite string
}

// debDep is one alternative of a Depends entry: "name (op version)".
type debDep struct {
	Name, Op, Version string
}

// parseStanzas reads Debian control stanzas (Packages lists, `apt-cache
// show`): the Package, Version and Depends fields of each, continuation
// lines joined.
func parseStanzas(text string) []debPackage {
	var out []debPackage
	var cur debPackage
	field := ""
	flush := func() {
		if cur.Name != "" {
			out = append(out, cur)
		}
		cur, field = debPackage{}, ""
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if field == "Depends" {
				cur.Depends += " " + strings.TrimSpace(l)
			}
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		field, v = k, strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Depends":
			cur.Depends = v
		}
	}
	flush()
	return out
}

var depRE = regexp.MustCompile(`^([^\s(\[]+)\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?`)

// parseDepends splits a Depends field into its entries, each a list of
// alternatives ("a | b"); architecture qualifiers (":any") are dropped.
func parseDepends(field string) [][]debDep {
	var out [][]debDep
	for _, entry := range strings.Split(field, ",") {
		var alts []debDep
		for _, alt := range strings.Split(entry, "|") {
			m := depRE.FindStringSubmatch(strings.TrimSpace(alt))
			if m == nil {
				continue
			}
			name, _, _ := strings.Cut(m[1], ":")
			alts = append(alts, debDep{Name: name, Op: m[2], Version: m[3]})
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out
}

// exactDeps are the dependencies of a Depends field pinned to version
// ("name (= version)"), the first alternative of each entry: the other
// binary packages of the same kernel build (linux-binary-*, linux-modules-*,
// linux-base-* from Debian's 7.x kernels on).
func exactDeps(field, version string) []string {
	var names []string
	for _, alts := range parseDepends(field) {
		if d := alts[0]; d.Op == "=" && d.Version == version {
			names = append(names, d.Name)
		}
	}
	return names
}

// compareVersions orders Debian package versions as dpkg does: epoch,
// then upstream version, then revision, each compared with
// compareVersionPart. It returns <0, 0 or >0.
func compareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareNumbers(ea, eb); c != 0 {
		return c
	}
	if c := compareVersionPart(ua, ub); c != 0 {
		return c
	}
	return compareVersionPart(ra, rb)
}

// splitVersion splits "epoch:upstream-revision"; the epoch defaults to 0
// and the revision to "".
func splitVersion(v string) (epoch, upstream, revision string) {
	epoch = "0"
	if e, rest, ok := strings.Cut(v, ":"); ok && e != "" && strings.Trim(e, "0123456789") == "" {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// compareNumbers compares two strings of digits by value.
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// versionOrder weighs a non-digit character: '~' sorts before anything,
// even the end of the string; letters before other characters.
func versionOrder(s string, i int) int {
	switch {
	case i >= len(s) || isDigit(s[i]):
		return 0
	case isLetter(s[i]):
		return int(s[i])
	case s[i] == '~':
		return -1
	default:
		return int(s[i]) + 256
	}
}

// compareVersionPart is dpkg's verrevcmp: alternately a run of
// non-digits, compared character by character with versionOrder, and a
// run of digits, compared as a number.
func compareVersionPart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := versionOrder(a, i), versionOrder(b, j)
			if ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareNumbers(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}
