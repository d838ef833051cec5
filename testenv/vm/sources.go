package vm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The runner's apt takes its mirrors from the machine's apt sources: the
// Debian archive is the URI of the first `deb` entry of a Debian suite
// (bookworm, trixie-updates, unstable, ...) with the component main, the
// security archive that of the first such entry of a *-security suite.
// The environment variables EnvDebianMirror and EnvSecurityMirror
// override them, for machines whose sources name neither.

// Environment variables that override the mirrors of the machine's apt
// sources.
const (
	EnvDebianMirror   = "EBPFOVS_VM_DEBIAN_MIRROR"
	EnvSecurityMirror = "EBPFOVS_VM_SECURITY_MIRROR"
)

// machineAptDir holds the machine's apt sources (sources.list and
// sources.list.d); tests point it elsewhere.
var machineAptDir = "/etc/apt"

// aptSource is one entry of an apt sources file: one suite of one URI.
type aptSource struct {
	Type, URI, Suite string
	Components       []string
}

// sourcesFile is a sources file's name and text.
type sourcesFile struct {
	Name, Text string
}

// parseAptSources returns the entries of the files, in order: one-line
// entries of *.list files (sources.list among them), deb822 stanzas of
// *.sources files. Other files are ignored, as apt does.
func parseAptSources(files []sourcesFile) []aptSource {
	var out []aptSource
	for _, f := range files {
		switch {
		case strings.HasSuffix(f.Name, ".list"):
			out = append(out, parseOneLineSources(f.Text)...)
		case strings.HasSuffix(f.Name, ".sources"):
			out = append(out, parseDeb822Sources(f.Text)...)
		}
	}
	return out
}

// parseOneLineSources parses the one-line format:
// `deb [opt=value ...] URI SUITE [COMPONENT...]`, # to the end of a line
// a comment.
func parseOneLineSources(text string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		typ := f[0]
		rest := strings.TrimSpace(strings.TrimSpace(line)[len(typ):])
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				continue // malformed: apt rejects it too
			}
			rest = rest[end+1:]
		}
		f = strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{Type: typ, URI: f[0], Suite: f[1], Components: f[2:]})
	}
	return out
}

// parseDeb822Sources parses the deb822 format: stanzas of `Field: value`
// lines separated by blank lines, lines starting with # comments, lines
// starting with a space or tab continuing the field before. A stanza
// yields an entry per type and suite, with the first of its URIs; those
// with `Enabled: no` yield none.
func parseDeb822Sources(text string) []aptSource {
	var out []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		defer func() { fields, last = map[string]string{}, "" }()
		if v, ok := fields["enabled"]; ok && !aptTrue(v) {
			return
		}
		uris := strings.Fields(fields["uris"])
		if len(uris) == 0 {
			return
		}
		comps := strings.Fields(fields["components"])
		for _, typ := range strings.Fields(fields["types"]) {
			for _, suite := range strings.Fields(fields["suites"]) {
				out = append(out, aptSource{Type: typ, URI: uris[0], Suite: suite, Components: comps})
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \t\r")
		switch {
		case line == "":
			flush()
		case line[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

// aptTrue reports whether a deb822 boolean (Enabled) is true.
func aptTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "no", "false", "off", "disable", "without", "0":
		return false
	}
	return true
}

// debianCodenames are Debian's release names and aliases, the first part
// of its suites' names.
var debianCodenames = map[string]bool{
	"buzz": true, "rex": true, "bo": true, "hamm": true, "slink": true, "potato": true,
	"woody": true, "sarge": true, "etch": true, "lenny": true, "squeeze": true,
	"wheezy": true, "jessie": true, "stretch": true, "buster": true, "bullseye": true,
	"bookworm": true, "trixie": true, "forky": true, "duke": true, "sid": true,
	"oldoldstable": true, "oldstable": true, "stable": true, "testing": true,
	"unstable": true, "experimental": true,
}

// isDebianSuite reports whether suite is one of Debian's: a codename or
// alias, possibly with a suffix (-updates, -backports, -security, the old
// /updates).
func isDebianSuite(suite string) bool {
	base, _, _ := strings.Cut(suite, "-")
	base, _, _ = strings.Cut(base, "/")
	return debianCodenames[base]
}

// isSecuritySuite reports whether suite is served by the security archive.
func isSecuritySuite(suite string) bool {
	return strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates")
}

// pickMirrors returns the URIs of the Debian archive and of its security
// archive among the entries ("" for none): those of the first `deb`
// entries of a Debian suite with main, not *-security and *-security.
func pickMirrors(srcs []aptSource) (archive, security string) {
	for _, s := range srcs {
		if s.Type != "deb" || !isDebianSuite(s.Suite) || !slices.Contains(s.Components, "main") || !validMirror(s.URI) {
			continue
		}
		uri := strings.TrimRight(s.URI, "/")
		switch {
		case isSecuritySuite(s.Suite):
			if security == "" {
				security = uri
			}
		case archive == "":
			archive = uri
		}
	}
	return archive, security
}

// validMirror reports whether uri can go into the runner's sources.list
// (a scheme, no blank or quote; no cdrom).
func validMirror(uri string) bool {
	scheme, _, ok := strings.Cut(uri, ":")
	return ok && scheme != "" && scheme != "cdrom" && !strings.ContainsAny(uri, " \t\r\n\"'[]")
}

// readAptSources reads the sources files under dir (an /etc/apt):
// sources.list, then sources.list.d's *.list and *.sources files in the
// order of their names. Missing files or directories are no error.
func readAptSources(dir string) ([]sourcesFile, error) {
	names := []string{filepath.Join(dir, "sources.list")}
	entries, err := os.ReadDir(filepath.Join(dir, "sources.list.d"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries { // sorted by name
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources")) {
			names = append(names, filepath.Join(dir, "sources.list.d", n))
		}
	}
	var files []sourcesFile
	for _, n := range names {
		b, err := os.ReadFile(n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		files = append(files, sourcesFile{Name: n, Text: string(b)})
	}
	return files, nil
}

// mirrorError is an error about the mirrors themselves: no suite can be
// fetched, so resolution stops at once.
type mirrorError struct{ msg string }

func (e *mirrorError) Error() string { return e.msg }

// debianMirrors are the URIs the runner's apt uses; "" when neither the
// environment nor the machine's sources (under dir) name one.
type debianMirrors struct {
	Archive, Security string
	dir               string
}

// loadMirrors returns the mirrors: those of the environment (getenv), else
// those of the machine's apt sources under dir.
func loadMirrors(dir string, getenv func(string) string) (debianMirrors, error) {
	m := debianMirrors{Archive: getenv(EnvDebianMirror), Security: getenv(EnvSecurityMirror), dir: dir}
	for env, v := range map[string]string{EnvDebianMirror: m.Archive, EnvSecurityMirror: m.Security} {
		if v != "" && !validMirror(v) {
			return m, &mirrorError{fmt.Sprintf("%s=%q: not a URI apt can use (such as http://mirror.test/debian)", env, v)}
		}
	}
	if m.Archive == "" || m.Security == "" {
		files, err := readAptSources(dir)
		if err != nil {
			return m, &mirrorError{fmt.Sprintf("the machine's apt sources: %v", err)}
		}
		archive, security := pickMirrors(parseAptSources(files))
		if m.Archive == "" {
			m.Archive = archive
		}
		if m.Security == "" {
			m.Security = security
		}
	}
	m.Archive = strings.TrimRight(m.Archive, "/")
	m.Security = strings.TrimRight(m.Security, "/")
	return m, nil
}

// uri returns the URI of suite's archive.
func (m debianMirrors) uri(s debianSuite) (string, error) {
	where := filepath.Join(m.dir, "sources.list") + ", " + filepath.Join(m.dir, "sources.list.d")
	if s.Security {
		if m.Security == "" {
			return "", &mirrorError{fmt.Sprintf("suite %s: no Debian security archive (a *-security suite) in the machine's apt sources (%s); set %s", s.Name, where, EnvSecurityMirror)}
		}
		return m.Security, nil
	}
	if m.Archive == "" {
		return "", &mirrorError{fmt.Sprintf("no Debian archive in the machine's apt sources (%s); set %s", where, EnvDebianMirror)}
	}
	return m.Archive, nil
}
