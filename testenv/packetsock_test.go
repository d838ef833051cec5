package testenv

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// TestPacketSocket: a frame sent on VM1's packet socket crosses a Linux
// bridge and is captured, byte for byte, by VM2's; another socket on VM1
// sees it as outgoing (the sending socket never sees its own frames), and a
// read of incoming frames only does not return it.
func TestPacketSocket(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabOptions{VMs: 2})
	lab.Bridge(t, "br-ps")
	vm1, vm2 := lab.VM(1), lab.VM(2)
	p1, p2, watch := vm1.OpenPacketSocket(t), vm2.OpenPacketSocket(t), vm1.OpenPacketSocket(t)
	frame := Build(PacketSpec{SrcMAC: vm1.MAC, DstMAC: vm2.MAC, SrcIP: vm1.IP, DstIP: vm2.IP, Proto: "udp",
		SrcPort: 4242, DstPort: 4243, Payload: []byte("packet socket")})
	same := func(c Captured) bool { return bytes.Equal(c.Data, frame) }
	if err := p1.Send(frame); err != nil {
		t.Fatal(err)
	}
	if c, err := p2.ReadMatching(2*time.Second, false, same); err != nil || c.Outgoing {
		t.Fatalf("VM2 capture: %+v, %v", c, err)
	}
	if c, err := watch.ReadMatching(time.Second, true, same); err != nil || !c.Outgoing {
		t.Fatalf("VM1's other socket: %+v, %v; want the frame as outgoing", c, err)
	}
	if err := p1.Send(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.ReadMatching(300*time.Millisecond, false, same); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("VM1 reading incoming frames only: %v, want a timeout", err)
	}
}
