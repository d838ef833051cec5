package ofctl

import "strings"

// token is one key or key-value pair, split the way OVS's
// ofputil_parse_key_value() splits them.
type token struct {
	key   string
	value string
	delim byte // ':', '=', '(' or 0 when the key had no value
}

// text reconstructs the token as written (for error messages).
func (t token) text() string {
	switch t.delim {
	case 0:
		return t.key
	case '(':
		return t.key + "(" + t.value + ")"
	default:
		return t.key + string(t.delim) + t.value
	}
}

const (
	pairSeparators = ", \t\r\n"
	keyDelimiters  = ":=(, \t\r\n"
)

// parseValueLen returns the length of the value at the start of s, which
// ends at the first byte in delims that is not inside parentheses.
func parseValueLen(s string, delims string) int {
	n := 0
	for n < len(s) && !strings.ContainsRune(delims, rune(s[n])) {
		if s[n] == '(' {
			level := 0
			for {
				if n >= len(s) {
					return n
				}
				switch s[n] {
				case '(':
					level++
				case ')':
					level--
				}
				n++
				if level <= 0 {
					break
				}
			}
		} else {
			n++
		}
	}
	return n
}

// nextToken parses one key or key-value pair from s[*pos:], exactly like
// ofputil_parse_key_value():
//
//   - commas and white space separate pairs;
//   - a key ends at ':', '=', '(', ',' or white space;
//   - after ':' or '=' the value runs to the next comma or white space
//     (parenthesized parts may contain both);
//   - after '(' the value runs to the matching ')'; "(x)->y" keeps "->y".
func nextToken(s string, pos *int) (token, bool) {
	p := *pos
	for p < len(s) && strings.IndexByte(pairSeparators, s[p]) >= 0 {
		p++
	}
	if p >= len(s) {
		*pos = p
		return token{}, false
	}
	keyLen := 0
	for p+keyLen < len(s) && strings.IndexByte(keyDelimiters, s[p+keyLen]) < 0 {
		keyLen++
	}
	key := s[p : p+keyLen]
	var keyDelim byte
	if p+keyLen < len(s) {
		keyDelim = s[p+keyLen]
		p += keyLen + 1
	} else {
		p += keyLen
	}

	var valueDelims string
	switch keyDelim {
	case ':', '=':
		valueDelims = pairSeparators
	case '(':
		valueDelims = ")"
	default:
		*pos = p
		return token{key: key}, true
	}
	rest := s[p:]
	n := parseValueLen(rest, valueDelims)
	if keyDelim == '(' && n < len(rest) && rest[n] == ')' &&
		strings.HasPrefix(rest[n+1:], "->") {
		n += parseValueLen(rest[n:], pairSeparators)
	}
	value := rest[:n]
	if n < len(rest) {
		n++ // skip the delimiter
	}
	*pos = p + n
	return token{key: key, value: value, delim: keyDelim}, true
}

// tokenize splits s into all of its tokens.
func tokenize(s string) []token {
	var out []token
	pos := 0
	for {
		t, ok := nextToken(s, &pos)
		if !ok {
			return out
		}
		out = append(out, t)
	}
}

// extractActions splits a flow string at its actions, like OVS's
// ofp_extract_actions(): the match ends where the first "action" appears and
// the actions start after the next '='.  ok is false when there is no
// "action...=" at all.
func extractActions(s string) (match, actions string, ok bool) {
	i := strings.Index(s, "action")
	if i < 0 {
		return s, "", false
	}
	j := strings.IndexByte(s[i+1:], '=')
	if j < 0 {
		return s[:i], "", false
	}
	return s[:i], s[i+1+j+1:], true
}
