package testenv

import (
	"encoding/binary"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// testNLAttr builds a netlink attribute (padded), nested when it holds others.
func testNLAttr(typ uint16, nested bool, val ...[]byte) []byte {
	var body []byte
	for _, v := range val {
		body = append(body, v...)
	}
	if nested {
		typ |= unix.NLA_F_NESTED
	}
	a := make([]byte, 4, 4+len(body)+3)
	binary.NativeEndian.PutUint16(a[0:], uint16(4+len(body)))
	binary.NativeEndian.PutUint16(a[2:], typ)
	a = append(a, body...)
	for len(a)%4 != 0 {
		a = append(a, 0)
	}
	return a
}

func testTuple(typ uint16, src, dst string, proto uint8, sport, dport uint16) []byte {
	be16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	return testNLAttr(typ, true,
		testNLAttr(ctaTupleIP, true,
			testNLAttr(ctaIPv4Src, false, net.ParseIP(src).To4()),
			testNLAttr(ctaIPv4Dst, false, net.ParseIP(dst).To4())),
		testNLAttr(ctaTupleProto, true,
			testNLAttr(ctaProtoNum, false, []byte{proto}),
			testNLAttr(ctaProtoSrcPort, false, be16(sport)),
			testNLAttr(ctaProtoDstPort, false, be16(dport))))
}

// TestParseKernelConnNAT: a source-NATed connection as ctnetlink dumps it:
// its original tuple, its translated reply tuple and its status bits.
func TestParseKernelConnNAT(t *testing.T) {
	msg := append(testTuple(ctaTupleOrig, "10.1.0.1", "10.2.0.1", 6, 40000, 80),
		testTuple(ctaTupleReply, "10.2.0.1", "10.0.0.100", 6, 80, 20003)...)
	status := KernelCTSrcNAT | KernelCTSrcNATDone | KernelCTDstNATDone | 0x8 | 0x4 | 0x2 // CONFIRMED, ASSURED, SEEN_REPLY
	msg = append(msg, testNLAttr(ctaStatus, false, binary.BigEndian.AppendUint32(nil, uint32(status)))...)
	c := parseKernelConn(msg)
	if c.Proto != 6 || c.Src.String() != "10.1.0.1" || c.Dst.String() != "10.2.0.1" || c.Sport != 40000 || c.Dport != 80 {
		t.Errorf("original tuple: %+v", c)
	}
	if c.ReplySrc.String() != "10.2.0.1" || c.ReplyDst.String() != "10.0.0.100" || c.ReplySport != 80 || c.ReplyDport != 20003 {
		t.Errorf("reply tuple: %v:%d > %v:%d, want 10.2.0.1:80 > 10.0.0.100:20003", c.ReplySrc, c.ReplySport, c.ReplyDst, c.ReplyDport)
	}
	if !c.HasStatus || c.Status != uint32(status) || c.Status&KernelCTDstNAT != 0 {
		t.Errorf("status %#x (have it: %v), want %#x", c.Status, c.HasStatus, status)
	}
}
