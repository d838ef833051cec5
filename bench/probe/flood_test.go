package probe

import (
	"context"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestFlood sends both kinds over a direct veth pair between two lab VMs:
// frames leave, and the peer's interface counts what arrived.
func TestFlood(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{Direct: true})
	vm1, vm2 := lab.VM(1), lab.VM(2)
	for _, kind := range []string{FloodUDP, FloodSYN} {
		var res FloodResult
		err := vm1.NS.Do(func() (err error) {
			res, err = Flood(context.Background(), vm1.Iface, vm1.MAC, vm2.MAC, vm1.IP, vm2.IP, kind, 300*time.Millisecond)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent == 0 || res.Seconds < 0.3 {
			t.Errorf("%s: %+v", kind, res)
		}
		t.Logf("%s: %.2f Mpps sent", kind, float64(res.Sent)/res.Seconds/1e6)
	}
}
