package ofctl

import (
	"reflect"
	"testing"
)

// FuzzParseFlow checks that parsing never panics and that the canonical
// text of any accepted flow parses back into an equal flow with the same
// text (parse -> String -> parse is stable).  The same holds for ParseMatch.
func FuzzParseFlow(f *testing.F) {
	for _, c := range flowCases {
		f.Add(c.in)
	}
	for _, c := range flowCasesOwn {
		f.Add(c.in)
	}
	for _, c := range errorCases {
		f.Add(c.in)
	}
	for _, s := range recordFlows {
		f.Add(s)
	}
	f.Add("ct_state=+trk,tcp,tp_dst=80")
	f.Add("table=3,cookie=0x10/0xf0,out_port=2,ip")
	f.Fuzz(func(t *testing.T, s string) {
		if fl, err := ParseFlow(s, testPorts); err == nil {
			fl.DumpLine(testPorts, &Stats{Ages: true})
			fl.MatchString(testPorts)
			text := fl.String()
			g, err := ParseFlow(text, nil)
			if err != nil {
				t.Fatalf("ParseFlow(%q) ok, but its String() %q fails: %v", s, text, err)
			}
			if !g.Equal(fl) || !reflect.DeepEqual(g, fl) {
				t.Fatalf("ParseFlow(%q): String() %q parses to a different flow %q", s, text, g.String())
			}
			if g.String() != text {
				t.Fatalf("String() not stable: %q -> %q", text, g.String())
			}
			rec, err := fl.MarshalBinary()
			if err != nil {
				t.Fatalf("ParseFlow(%q): MarshalBinary: %v", s, err)
			}
			if h, err := UnmarshalFlow(rec); err != nil || !reflect.DeepEqual(h, fl) || h.String() != text {
				t.Fatalf("ParseFlow(%q): record %x decodes to %v, %v", s, rec, h, err)
			}
		}
		if fl, err := ParseMatch(s, testPorts); err == nil {
			text := fl.String()
			g, err := ParseMatch(text, nil)
			if err != nil {
				t.Fatalf("ParseMatch(%q) ok, but its String() %q fails: %v", s, text, err)
			}
			if !reflect.DeepEqual(g, fl) || g.String() != text {
				t.Fatalf("ParseMatch(%q): String() %q parses to %q", s, text, g.String())
			}
			if _, err := fl.MarshalBinary(); err == nil {
				t.Fatalf("ParseMatch(%q): a filter encoded as a record", s)
			}
			if !fl.Covers(fl, true) && fl.Table == TableAll && fl.OutPort == 0 {
				t.Fatalf("filter %q does not strictly cover itself", s)
			}
		}
	})
}

// FuzzUnmarshalFlow checks that decoding arbitrary bytes never panics and
// that whatever decodes encodes again into a record that decodes to an
// equal flow.
func FuzzUnmarshalFlow(f *testing.F) {
	for _, fl := range recordTestFlows(f) {
		rec, err := fl.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := UnmarshalFlow(data)
		if err != nil {
			return
		}
		_ = fl.String() // printing a decoded flow must not panic either
		_ = fl.DumpLine(testPorts, nil)
		rec, err := fl.MarshalBinary()
		if err != nil {
			t.Fatalf("record %x decodes to %q, which does not encode: %v", data, fl, err)
		}
		g, err := UnmarshalFlow(rec)
		if err != nil || !reflect.DeepEqual(g, fl) {
			t.Fatalf("record %x decodes to %q, re-encoded as %x that decodes to %v, %v", data, fl, rec, g, err)
		}
	})
}
