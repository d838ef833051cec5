package ctl_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestSurfMakeDemo runs `make demo` (scripts/demo.sh on a freshly built
// ./ebpfovs) as a user would: it must succeed, show the conntrack lab's
// steps (SYN_SENT, then ESTABLISHED and TIME_WAIT; VM2 connects through
// the NORMAL flow and is refused by the strict one), and leave nothing
// behind: not its namespaces, not its bridge's pins.
// About 17 s, mostly the script's sleeps.
func TestSurfMakeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the demo takes about 17 s")
	}
	if testenv.InVM() {
		t.Skip("in a vmtest guest: no go tool or make to build the demo's binary; the host's `make test` runs this test")
	}
	testenv.RequirePrivileged(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-C", root, "demo")
	// The demo names its bpffs and namespaces itself: none of the
	// caller's choices for ebpfovs.
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "EBPFOVS_BPFFS=") && !strings.HasPrefix(v, "EBPFOVS_NETNS=") {
			cmd.Env = append(cmd.Env, v)
		}
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	o := string(out)
	t.Logf("make demo: %v", time.Since(start).Round(time.Millisecond))

	// The tag the demo named its bridge and namespaces with (its PID).
	m := regexp.MustCompile(`bridge demo(\d+): 2 ports, 6 flows, \d+ connections, pinned at /sys/fs/bpf/ebpfovs/demo\d+\n`).FindStringSubmatch(o)
	if m == nil {
		t.Fatalf("make demo: %v; no show of its bridge in the output:\n%s", err, o)
	}
	tag := m[1]
	labTag := "ebpfovs-demo-" + tag // ebpfovs-lab up --tag
	hv := testenv.LabHostNS(labTag)
	nsPaths := []string{hv, testenv.LabVMNS(labTag, 1), testenv.LabVMNS(labTag, 2)}
	pins := "/sys/fs/bpf/ebpfovs/demo" + tag
	t.Cleanup(func() { // what the demo failed to remove, should it fail to
		if _, err := os.Stat(pins); err == nil {
			// Its namespace may be gone already (lab down): then the
			// bridge's own pins are all there is to remove.
			if _, _, code := main("-b", "demo"+tag, "--netns", hv, "detach"); code != 0 {
				main("-b", "demo"+tag, "detach")
			}
		}
		for _, ns := range nsPaths {
			if _, err := os.Stat(filepath.Join(testenv.NetnsRunDir, ns)); err == nil {
				exec.Command("ip", "netns", "del", ns).Run()
			}
		}
	})
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, o)
	}
	for _, want := range []string{
		"$ ebpfovs attach vnet1 vnet2\n",
		"protoinfo=(state=SYN_SENT)\n(SYN_SENT: the SYN was committed",
		"protoinfo=(state=ESTABLISHED)\n",
		"After both ends closed:\u001b[0m\n$ ebpfovs dump-conntrack\ntcp,orig=(src=10.0.10.1,dst=10.0.10.2,",
		"protoinfo=(state=TIME_WAIT)\n",
		" priority=50,ct_state=+est+trk,tcp,in_port=vnet1 actions=output:vnet2\n",
		"VM2: nc -z 10.0.10.1 6000: connected\n",
		"VM2: nc -z 10.0.10.1 6000: refused by the flows",
		"Done; removing the namespaces and the bridge.",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, o)
		}
	}

	for _, ns := range nsPaths {
		if _, err := os.Stat(filepath.Join(testenv.NetnsRunDir, ns)); !os.IsNotExist(err) {
			t.Errorf("the demo left its namespace %s: %v", ns, err)
		}
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("the demo left its bridge's pins %s: %v", pins, err)
	}
}
