package main

import (
	"io"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-mode", "full", "-rounds", "7", "-paths", "a,E"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds != 7 || c.iperfTime != 8*time.Second || !c.profile || len(c.paths) != 2 || c.paths[0] != "A" {
		t.Errorf("full preset with overrides: %+v", c)
	}
	if c, err := parseFlags([]string{"-paths", "e,g,H"}, io.Discard); err != nil || len(c.paths) != 3 || c.paths[1] != "G" || c.paths[2] != "H" {
		t.Errorf("-paths e,g,H: %v, %v", c.paths, err)
	}
	if c, err := parseFlags(nil, io.Discard); err != nil || len(c.paths) != 13 {
		t.Errorf("default paths: %v, %v; want A to M", c.paths, err)
	}
	for _, bad := range [][]string{
		{"-rounds", "3"},
		{"-iperf-time", "1500ms"},
		{"-paths", "N"},
		{"-mode", "fast"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
