package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The kernel conntrack router's addressing: a client subnet behind the
// router's "client" tap and a server subnet behind its "server" tap. Frames
// written into a tap must carry these addresses (see KernelCT.ClientFrame and
// ServerFrame) for the router to forward them.
var (
	KernelCTClientIP  = net.IPv4(10, 1, 0, 1).To4()   // the client, behind the client tap
	KernelCTOtherIP   = net.IPv4(10, 1, 0, 2).To4()   // a second host behind the client tap
	KernelCTRouterCIP = net.IPv4(10, 1, 0, 254).To4() // the router on the client tap
	KernelCTServerIP  = net.IPv4(10, 2, 0, 1).To4()   // the server, behind the server tap
	KernelCTRouterSIP = net.IPv4(10, 2, 0, 254).To4() // the router on the server tap
	// IPv6: the client subnet fd01::/64, the server subnet fd02::/64.
	KernelCTClientIP6  = net.ParseIP("fd01::1")
	KernelCTRouterCIP6 = net.ParseIP("fd01::fe")
	KernelCTServerIP6  = net.ParseIP("fd02::1")
	KernelCTRouterSIP6 = net.ParseIP("fd02::fe")
	KernelCTClientMAC  = net.HardwareAddr{0x02, 0xc7, 0x00, 0x01, 0x00, 0x01}
	KernelCTOtherMAC   = net.HardwareAddr{0x02, 0xc7, 0x00, 0x01, 0x00, 0x02}
	KernelCTServerMAC  = net.HardwareAddr{0x02, 0xc7, 0x00, 0x02, 0x00, 0x01}
)

const (
	kernelCTPrefixBits = 24 // both subnets are /24
	// kernelCTForwardWait bounds the wait for a forwarded frame; the
	// forwarding itself is synchronous, so this is only waited out when
	// the router did not forward the packet.
	kernelCTForwardWait = 500 * time.Millisecond
)

// KernelCTTable is the nftables table (family inet) NewKernelCT installs.
const KernelCTTable = "ctdiff"

// The named counters of KernelCTTable: each counts the packets whose
// conntrack result, right after nf_conntrack ran in prerouting, was that.
const (
	KernelCTNew        = "new"       // ct state new
	KernelCTEst        = "est"       // ct state established, ct direction original
	KernelCTEstReply   = "est_reply" // ct state established, ct direction reply
	KernelCTRel        = "rel"       // ct state related, ct direction original
	KernelCTRelReply   = "rel_reply" // ct state related, ct direction reply
	KernelCTInvalid    = "invalid"   // ct state invalid (no conntrack attached)
	KernelCTUntracked  = "untracked" // ct state untracked
	kernelCTAll        = "total"     // every packet that reached the chain
	kernelCTForwardCnt = "forwarded" // every packet that reached the forward hook
)

// kernelCTStates lists the state counters in the order they are reported.
var kernelCTStates = []string{KernelCTNew, KernelCTEst, KernelCTEstReply, KernelCTRel, KernelCTRelReply, KernelCTInvalid, KernelCTUntracked}

// kernelCTRuleset counts every packet by its conntrack result and accepts
// it. A ct expression in a base chain is also what turns nf_conntrack on in
// the namespace (nf_ct_netns_get). Prerouting at priority -150 runs right
// after conntrack (-200), so the result is counted even for a packet that
// is not forwarded afterwards.
var kernelCTRuleset = `table inet ` + KernelCTTable + ` {
	counter new {}
	counter est {}
	counter est_reply {}
	counter rel {}
	counter rel_reply {}
	counter invalid {}
	counter untracked {}
	counter total {}
	counter forwarded {}
	chain prerouting {
		type filter hook prerouting priority -150; policy accept;
		counter name "total"
		ct state new counter name "new"
		ct state established ct direction original counter name "est"
		ct state established ct direction reply counter name "est_reply"
		ct state related ct direction original counter name "rel"
		ct state related ct direction reply counter name "rel_reply"
		ct state invalid counter name "invalid"
		ct state untracked counter name "untracked"
	}
	chain forwarding {
		type filter hook forward priority 0; policy accept;
		counter name "forwarded"
	}
}
`

// KernelCTSysctls are the nf_conntrack settings NewKernelCT sets to their
// kernel defaults in the router's namespace (and Sysctls reports).
var KernelCTSysctls = []struct{ Key, Value string }{
	{"net/netfilter/nf_conntrack_tcp_loose", "1"},
	{"net/netfilter/nf_conntrack_tcp_be_liberal", "0"},
	{"net/netfilter/nf_conntrack_tcp_ignore_invalid_rst", "0"},
	{"net/netfilter/nf_conntrack_tcp_max_retrans", "3"},
	{"net/netfilter/nf_conntrack_checksum", "1"},
}

// kernelCTAcct turns nf_conntrack's accounting on in the router's namespace.
const kernelCTAcct = "net/netfilter/nf_conntrack_acct"

// KernelCT is the Linux kernel's own nf_conntrack as a test oracle: a
// network namespace that routes between two tap devices (client side
// 10.1.0.0/24 and fd01::/64, server side 10.2.0.0/24 and fd02::/64), with
// IPv4 and IPv6 forwarding, rp_filter off, permanent neighbour entries
// for the hosts (no ARP or neighbour discovery) and an nftables
// ruleset (KernelCTTable) that accepts everything and counts each packet by
// its conntrack result. Send a frame with Send and read its verdict; read
// the connections nf_conntrack stored with Conns.
type KernelCT struct {
	NS *NS
	// ClientTap and ServerTap are the router's two legs: a frame written
	// into ClientTap comes from the client subnet.
	ClientTap, ServerTap *Tap
	// RouterClientMAC and RouterServerMAC are the taps' MAC addresses,
	// the Ethernet destination of frames written into them.
	RouterClientMAC, RouterServerMAC net.HardwareAddr

	h        *netlink.Handle
	nfnl     int    // NETLINK_NETFILTER socket in NS
	nlSeq    uint32 // its last request's sequence number
	counters map[string]uint64
}

// NewKernelCT builds the router in a namespace of its own. Everything it
// creates (namespace, taps, nftables table) is removed by cleanups on tb,
// also when the test fails.
func NewKernelCT(tb testing.TB) *KernelCT {
	tb.Helper()
	RequirePrivileged(tb)
	for _, tool := range []string{"nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			if InVM() {
				tb.Skipf("in a vmtest guest: no %s for the kernel conntrack router (testenv/vm does not copy it)", tool)
			}
			tb.Fatalf("testenv: the kernel conntrack router needs %s: %v (apt-get install nftables util-linux)", tool, err)
		}
	}
	ns := NewNS(tb, "kct")
	if err := ns.DisableIPv6(); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	k := &KernelCT{NS: ns}
	k.ClientTap = ns.NewTap(tb, "ctc")
	k.ServerTap = ns.NewTap(tb, "cts")
	k.h = ns.MustHandle(tb)

	// IPv6 only on the taps (the namespace's default is off, above):
	// no link-local address, DAD or router advertisements, so the router
	// sends nothing of its own that conntrack could track.
	for _, tap := range []*Tap{k.ClientTap, k.ServerTap} {
		for _, s := range []struct{ key, value string }{
			{"addr_gen_mode", "1"}, {"accept_dad", "0"}, {"accept_ra", "0"}, {"disable_ipv6", "0"},
		} {
			if err := ns.SetSysctl("net/ipv6/conf/"+tap.Name+"/"+s.key, s.value); err != nil {
				tb.Fatalf("testenv: netns %s: %s: ipv6 %s=%s: %v", ns.Name, tap.Name, s.key, s.value, err)
			}
		}
	}
	type leg struct {
		tap     *Tap
		routers []net.IP
		hosts   map[string]net.HardwareAddr
		mac     *net.HardwareAddr
	}
	legs := []leg{
		{k.ClientTap, []net.IP{KernelCTRouterCIP, KernelCTRouterCIP6}, map[string]net.HardwareAddr{
			KernelCTClientIP.String(): KernelCTClientMAC, KernelCTOtherIP.String(): KernelCTOtherMAC,
			KernelCTClientIP6.String(): KernelCTClientMAC}, &k.RouterClientMAC},
		{k.ServerTap, []net.IP{KernelCTRouterSIP, KernelCTRouterSIP6}, map[string]net.HardwareAddr{
			KernelCTServerIP.String(): KernelCTServerMAC, KernelCTServerIP6.String(): KernelCTServerMAC}, &k.RouterServerMAC},
	}
	for _, l := range legs {
		link, err := k.h.LinkByName(l.tap.Name)
		if err != nil {
			tb.Fatalf("testenv: %v", err)
		}
		*l.mac = link.Attrs().HardwareAddr
		for _, router := range l.routers {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: router, Mask: net.CIDRMask(kernelCTPrefixBits, 32)}}
			if router.To4() == nil {
				addr = &netlink.Addr{IPNet: &net.IPNet{IP: router, Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
			}
			if err := k.h.AddrAdd(link, addr); err != nil {
				tb.Fatalf("testenv: %s: add %v: %v", l.tap.Name, addr, err)
			}
		}
		for ip, mac := range l.hosts {
			family := unix.AF_INET
			if net.ParseIP(ip).To4() == nil {
				family = unix.AF_INET6
			}
			n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT,
				IP: net.ParseIP(ip), HardwareAddr: mac}
			if err := k.h.NeighSet(n); err != nil {
				tb.Fatalf("testenv: %s: neighbour %s lladdr %s: %v", l.tap.Name, ip, mac, err)
			}
		}
	}
	// The ruleset first: its ct expressions load nf_conntrack where it is a
	// module, and with it the net.netfilter sysctls set below.
	if out, err := k.nft(kernelCTRuleset, "-f", "-"); err != nil {
		tb.Fatalf("testenv: netns %s: load the nftables ruleset: %v\n%s", ns.Name, err, out)
	}
	// Registered after the namespace's and the taps' cleanups, so it runs
	// before them (cleanups run last in, first out).
	tb.Cleanup(func() {
		if out, err := k.nft("", "delete", "table", "inet", KernelCTTable); err != nil {
			tb.Errorf("testenv: netns %s: delete nftables table %s: %v\n%s", ns.Name, KernelCTTable, err, out)
		}
	})
	type sysctl struct{ key, value string }
	sysctls := []sysctl{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/all/rp_filter", "0"},
		{"net/ipv4/conf/default/rp_filter", "0"},
		{"net/ipv4/conf/all/send_redirects", "0"},
		{"net/ipv6/conf/all/forwarding", "1"},
	}
	for _, tap := range []*Tap{k.ClientTap, k.ServerTap} {
		sysctls = append(sysctls,
			sysctl{"net/ipv4/conf/" + tap.Name + "/rp_filter", "0"},
			sysctl{"net/ipv4/conf/" + tap.Name + "/send_redirects", "0"})
	}
	for _, s := range KernelCTSysctls {
		sysctls = append(sysctls, sysctl{s.Key, s.Value})
	}
	// Per-connection packet and byte counters (off by default), as OVS's
	// kernel datapath and `conntrack -L -o extended` show them: read by
	// Conns. A connection gets them when it is created, so before any.
	sysctls = append(sysctls, sysctl{kernelCTAcct, "1"})
	for _, s := range sysctls {
		if err := ns.SetSysctl(s.key, s.value); err != nil {
			tb.Fatalf("testenv: netns %s: sysctl %s=%s: %v", ns.Name, s.key, s.value, err)
		}
	}

	if err := k.Flush(); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	// The nfnetlink socket for reading the counters, opened inside the
	// namespace (it stays there); closed before the namespace is deleted.
	if err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		tv := unix.Timeval{Sec: 5}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return err
		}
		k.nfnl = fd
		return nil
	}); err != nil {
		tb.Fatalf("testenv: netns %s: nfnetlink socket: %v", ns.Name, err)
	}
	tb.Cleanup(func() { unix.Close(k.nfnl) })
	var err error
	if k.counters, err = k.readCounters(); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return k
}

// nft runs nft in the router's namespace, with stdin as its input.
func (k *KernelCT) nft(stdin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := k.NS.Command(ctx, "nft", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// readCounters returns the packet counts of the table's named counters,
// dumped over nfnetlink (NFT_MSG_GETOBJ): the same numbers as `nft list
// counters`, without starting a process per packet.
func (k *KernelCT) readCounters() (map[string]uint64, error) {
	k.nlSeq++
	attr := func(typ uint16, val []byte) []byte {
		a := make([]byte, 4, 4+len(val)+3)
		binary.NativeEndian.PutUint16(a[0:], uint16(4+len(val)))
		binary.NativeEndian.PutUint16(a[2:], typ)
		a = append(a, val...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		return a
	}
	body := []byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0} // struct nfgenmsg
	body = append(body, attr(unix.NFTA_OBJ_TABLE, append([]byte(KernelCTTable), 0))...)
	body = append(body, attr(unix.NFTA_OBJ_TYPE, binary.BigEndian.AppendUint32(nil, unix.NFT_OBJECT_COUNTER))...)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETOBJ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], k.nlSeq)
	msg = append(msg, body...)
	if err := unix.Sendto(k.nfnl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netns %s: nfnetlink: dump counters: %w", k.NS.Name, err)
	}
	c := map[string]uint64{}
	buf := make([]byte, 1<<16)
	for done := false; !done; {
		n, _, err := unix.Recvfrom(k.nfnl, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netns %s: nfnetlink: dump counters: %w", k.NS.Name, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("nfnetlink: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != k.nlSeq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				done = true
				continue
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("netns %s: nfnetlink: dump counters of table inet %s: %w", k.NS.Name, KernelCTTable, unix.Errno(-errno))
					}
				}
				continue
			}
			if len(m.Data) < 4 {
				continue
			}
			var name string
			var packets uint64
			var hasPackets bool
			for _, a := range nlAttrs(m.Data[4:]) { // after struct nfgenmsg
				switch a.typ {
				case unix.NFTA_OBJ_NAME:
					name = string(bytes.TrimRight(a.val, "\x00"))
				case unix.NFTA_OBJ_DATA:
					for _, d := range nlAttrs(a.val) {
						if d.typ == unix.NFTA_COUNTER_PACKETS && len(d.val) == 8 {
							packets, hasPackets = binary.BigEndian.Uint64(d.val), true
						}
					}
				}
			}
			if name != "" && hasPackets {
				c[name] = packets
			}
		}
	}
	for _, name := range append([]string{kernelCTAll, kernelCTForwardCnt}, kernelCTStates...) {
		if _, ok := c[name]; !ok {
			return nil, fmt.Errorf("netns %s: table inet %s has no counter %q (have %v)", k.NS.Name, KernelCTTable, name, c)
		}
	}
	return c, nil
}

type nlAttr struct {
	typ uint16 // without the NLA_F_NESTED and NLA_F_NET_BYTEORDER flags
	val []byte
}

// nlAttrs splits netlink attributes.
func nlAttrs(b []byte) []nlAttr {
	var out []nlAttr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < 4 || l > len(b) {
			break
		}
		out = append(out, nlAttr{typ: binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER), val: b[4:l]})
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

// Sysctls reads, in the router's namespace, ip_forward, rp_filter,
// nf_conntrack_acct and the settings of KernelCTSysctls, as "net.ipv4.ip_forward=1" strings.
func (k *KernelCT) Sysctls() ([]string, error) {
	keys := []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", kernelCTAcct}
	for _, s := range KernelCTSysctls {
		keys = append(keys, s.Key)
	}
	var out []string
	for _, key := range keys {
		v, err := k.NS.Sysctl(key)
		if err != nil {
			return nil, fmt.Errorf("netns %s: sysctl %s: %w", k.NS.Name, key, err)
		}
		out = append(out, strings.ReplaceAll(key, "/", ".")+"="+v)
	}
	return out, nil
}

// ClientFrame sets spec's Ethernet addresses for a frame from a host of
// the client subnet (spec.SrcMAC, if set, is kept) to the router.
func (k *KernelCT) ClientFrame(spec PacketSpec) PacketSpec {
	if spec.SrcMAC == nil {
		spec.SrcMAC = KernelCTClientMAC
	}
	spec.DstMAC = k.RouterClientMAC
	return spec
}

// ServerFrame is ClientFrame for a frame from the server subnet.
func (k *KernelCT) ServerFrame(spec PacketSpec) PacketSpec {
	if spec.SrcMAC == nil {
		spec.SrcMAC = KernelCTServerMAC
	}
	spec.DstMAC = k.RouterServerMAC
	return spec
}

// KernelCTVerdict is what nf_conntrack made of one packet.
type KernelCTVerdict struct {
	// Counter is the KernelCT* counter the packet moved: KernelCTNew,
	// KernelCTEst, KernelCTEstReply, KernelCTRel, KernelCTRelReply,
	// KernelCTInvalid or KernelCTUntracked.
	Counter string
	// Forwarded tells that the packet also went through the forward hook
	// and came out of the other tap unchanged but for its TTL.
	Forwarded bool
}

// CtState is the verdict as OVS ct_state bits (+trk always; +new, +est,
// +rel, +rpl, +inv as nf_conntrack's ctinfo maps to them in OVS), or 0 for
// an untracked packet.
func (v KernelCTVerdict) CtState() uint32 {
	const csNew, csEst, csRel, csRpl, csInv, csTrk = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
	switch v.Counter {
	case KernelCTNew:
		return csTrk | csNew
	case KernelCTEst:
		return csTrk | csEst
	case KernelCTEstReply:
		return csTrk | csEst | csRpl
	case KernelCTRel:
		return csTrk | csRel
	case KernelCTRelReply:
		return csTrk | csRel | csRpl
	case KernelCTInvalid:
		return csTrk | csInv
	}
	return 0
}

// Send writes frame (IPv4 or IPv6) into the client tap (fromClient) or the server tap,
// waits for the router to forward it out of the other tap and returns
// nf_conntrack's verdict on it, read from the counters. A tap write is
// processed synchronously (netif_receive_skb in the writer's context), so
// by the time the frame comes out, its counters have moved.
func (k *KernelCT) Send(fromClient bool, frame []byte) (KernelCTVerdict, error) {
	in, out := k.ClientTap, k.ServerTap
	if !fromClient {
		in, out = out, in
	}
	var v KernelCTVerdict
	// Where the addresses, the protocol and the L4 header are: IPv4
	// (any header length) or IPv6 (no extension headers).
	var addrs, l4 int
	var proto int
	switch {
	case len(frame) >= 14+20 && binary.BigEndian.Uint16(frame[12:]) == 0x0800 && frame[14]>>4 == 4:
		addrs, proto, l4 = 14+12, 14+9, 14+int(frame[14]&0x0f)*4
	case len(frame) >= 14+40 && binary.BigEndian.Uint16(frame[12:]) == 0x86dd && frame[14]>>4 == 6:
		addrs, proto, l4 = 14+8, 14+6, 14+40
	default:
		return v, errors.New("KernelCT.Send: not an untagged IPv4 or IPv6 frame")
	}
	if err := in.WriteFrame(frame); err != nil {
		return v, err
	}
	// The router forwards the IP packet without the Ethernet padding a
	// short frame may carry (ip_rcv trims it to the IP header's length).
	sent := frame
	if l3 := kernelCTL3End(frame); l3 > 0 && l3 < len(frame) {
		sent = frame[:l3]
	}
	_, err := out.ReadFrameMatching(kernelCTForwardWait, func(b []byte) bool {
		return len(b) == len(sent) && bytes.Equal(b[addrs:l4], sent[addrs:l4]) && // addresses
			b[proto] == sent[proto] && bytes.Equal(b[l4:], sent[l4:]) // protocol, L4 untouched
	})
	switch {
	case err == nil:
		v.Forwarded = true
	case !errors.Is(err, os.ErrDeadlineExceeded):
		return v, err
	}
	state, fwd, err := k.packetCounted("Send")
	if err != nil {
		return v, err
	}
	if fwd != v.Forwarded {
		return v, fmt.Errorf("KernelCT.Send: the forward hook counted the packet: %v, and the frame came out of %s: %v", fwd, out.Name, v.Forwarded)
	}
	v.Counter = state
	return v, nil
}

// packetCounted reads the ruleset's counters after one packet went in
// (they become the next call's "before"): exactly one packet reached
// prerouting, and exactly one state counter moved, by one -- its name is
// returned; fwd says whether the forward hook counted the packet.
func (k *KernelCT) packetCounted(who string) (state string, fwd bool, err error) {
	now, err := k.readCounters()
	if err != nil {
		return "", false, err
	}
	before := k.counters
	k.counters = now
	if d := now[kernelCTAll] - before[kernelCTAll]; d != 1 {
		return "", false, fmt.Errorf("KernelCT.%s: %d packets reached prerouting, want 1 (counters before %v, after %v)", who, d, before, now)
	}
	var moved []string
	for _, name := range kernelCTStates {
		if now[name] != before[name] {
			moved = append(moved, fmt.Sprintf("%s+%d", name, now[name]-before[name]))
			state = name
		}
	}
	if len(moved) != 1 || now[state]-before[state] != 1 {
		return "", false, fmt.Errorf("KernelCT.%s: want exactly one state counter to move by one, got %v", who, moved)
	}
	return state, now[kernelCTForwardCnt] != before[kernelCTForwardCnt], nil
}

// The nat chains SetNAT creates in KernelCTTable: nf_nat's hooks, where
// nftables' dnat and snat statements run (on a connection's first packet
// only; its later packets, both ways, take the translation it got).
const (
	KernelCTNATPrerouting  = "nat_prerouting"  // type nat hook prerouting priority dstnat
	KernelCTNATPostrouting = "nat_postrouting" // type nat hook postrouting priority srcnat
)

// SetNAT makes the router translate: the rules (nftables statements, e.g.
// `ip daddr 10.0.0.200 tcp dport 80 dnat ip to 10.2.0.1:8080`) replace
// those of the chain KernelCTNATPrerouting (dnat) and of
// KernelCTNATPostrouting (snat), which it creates the first time. A
// rule mapping ports needs a transport protocol match before it (`meta
// l4proto { tcp, udp }`, `tcp dport 80`). A connection takes the rules of
// its first packet: Flush the table after a change. The chains go with the
// table when the test ends. Rules may name the taps: ClientTap.Name and
// ServerTap.Name are the router's interfaces.
func (k *KernelCT) SetNAT(prerouting, postrouting []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", KernelCTTable)
	fmt.Fprintf(&b, "\tchain %s { type nat hook prerouting priority dstnat; policy accept; }\n", KernelCTNATPrerouting)
	fmt.Fprintf(&b, "\tchain %s { type nat hook postrouting priority srcnat; policy accept; }\n", KernelCTNATPostrouting)
	b.WriteString("}\n")
	for _, c := range []struct {
		chain string
		rules []string
	}{{KernelCTNATPrerouting, prerouting}, {KernelCTNATPostrouting, postrouting}} {
		fmt.Fprintf(&b, "flush chain inet %s %s\n", KernelCTTable, c.chain)
		for _, r := range c.rules {
			fmt.Fprintf(&b, "add rule inet %s %s %s\n", KernelCTTable, c.chain, r)
		}
	}
	// Loading nf_nat (a module on Debian's kernels) is the first nat chain's job.
	if out, err := k.nft(b.String(), "-f", "-"); err != nil {
		return fmt.Errorf("netns %s: nftables nat rules: %w\n%s\n%s", k.NS.Name, err, bytes.TrimSpace(out), b.String())
	}
	return nil
}

// KernelCTNATVerdict is what the router made of one packet when it may
// translate it (SendNAT).
type KernelCTNATVerdict struct {
	// Counter is the conntrack result in prerouting, before any
	// translation (KernelCTVerdict.Counter).
	Counter string
	// ForwardHook tells that the packet reached the forward hook; Out is
	// the frame that came out of the other tap (nil: none did), as
	// translated. A packet may pass the forward hook and still be dropped
	// after it: nf_nat's snat runs in postrouting, and conntrack drops a
	// new connection whose translated tuple clashes with another's when it
	// confirms it there.
	ForwardHook bool
	Out         []byte
}

// CtState is Counter as OVS ct_state bits (KernelCTVerdict.CtState).
func (v KernelCTNATVerdict) CtState() uint32 {
	return KernelCTVerdict{Counter: v.Counter}.CtState()
}

// SendNAT writes frame, an IPv4 frame, into the client tap (fromClient) or
// the server tap, and returns the conntrack result and what came out of
// the other tap, translated or not: the IPv4 frame with frame's IP
// identification and protocol (nf_nat changes neither; give each packet
// its own identification). Unlike Send, a frame that is not forwarded is
// no error.
func (k *KernelCT) SendNAT(fromClient bool, frame []byte) (KernelCTNATVerdict, error) {
	in, out := k.ClientTap, k.ServerTap
	if !fromClient {
		in, out = out, in
	}
	var v KernelCTNATVerdict
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 || frame[14]>>4 != 4 {
		return v, errors.New("KernelCT.SendNAT: not an untagged IPv4 frame")
	}
	id, proto := binary.BigEndian.Uint16(frame[14+4:]), frame[14+9]
	if err := in.WriteFrame(frame); err != nil {
		return v, err
	}
	got, err := out.ReadFrameMatching(kernelCTForwardWait, func(b []byte) bool {
		return len(b) >= 14+20 && binary.BigEndian.Uint16(b[12:]) == 0x0800 && b[14]>>4 == 4 &&
			binary.BigEndian.Uint16(b[14+4:]) == id && b[14+9] == proto
	})
	switch {
	case err == nil:
		v.Out = got
	case !errors.Is(err, os.ErrDeadlineExceeded):
		return v, err
	}
	state, fwd, err := k.packetCounted("SendNAT")
	if err != nil {
		return v, err
	}
	v.ForwardHook = fwd
	if v.Out != nil && !v.ForwardHook {
		return v, fmt.Errorf("KernelCT.SendNAT: the frame came out of %s without passing the forward hook", out.Name)
	}
	v.Counter = state
	return v, nil
}

// kernelCTL3End is where an untagged IPv4 or IPv6 frame's IP packet ends
// by its header's length (before any Ethernet padding), or 0.
func kernelCTL3End(frame []byte) int {
	switch {
	case len(frame) >= 14+20 && frame[14]>>4 == 4:
		return 14 + int(binary.BigEndian.Uint16(frame[14+2:]))
	case len(frame) >= 14+40 && frame[14]>>4 == 6:
		return 14 + 40 + int(binary.BigEndian.Uint16(frame[14+4:]))
	}
	return 0
}

// KernelConn is one connection in the router's conntrack table, by its
// original-direction tuple.
type KernelConn struct {
	Proto      uint8
	Src, Dst   net.IP
	Sport      uint16 // TCP and UDP only
	Dport      uint16
	ICMPID     uint16 // ICMP and ICMPv6: the identifier, type and code of the original direction
	ICMPType   uint8
	ICMPCode   uint8
	TCPState   uint8 // nf_conntrack's TCP state (TCP_CONNTRACK_*), TCP only
	HasTCPInfo bool
	Timeout    uint32 // seconds left before it expires, truncated
	// Packets and Bytes are nf_conntrack_acct's counters, [0] the
	// original direction, [1] the reply: bytes from the IP header on
	// (skb->len at the hook, Ethernet padding trimmed). HasCounters: the
	// dump carried them (the accounting extension was on at creation).
	Packets, Bytes [2]uint64
	HasCounters    bool
	// The reply tuple (CTA_TUPLE_REPLY): the original reversed, but for
	// NAT, where it is the translated one (SNAT: ReplyDst and ReplyDport
	// are the new source; DNAT: ReplySrc and ReplySport the new
	// destination). ICMP: ReplyICMPID is the reply's identifier, the
	// translated one.
	ReplySrc, ReplyDst     net.IP
	ReplySport, ReplyDport uint16 // TCP and UDP only
	ReplyICMPID            uint16
	// Status is the connection's IPS_* bits (CTA_STATUS), e.g.
	// KernelCTSrcNAT; HasStatus: the dump carried it.
	Status    uint32
	HasStatus bool
}

// The NAT bits of KernelConn.Status (enum ip_conntrack_status,
// linux/netfilter/nf_conntrack_common.h): which translation the
// connection has, and which of nf_nat's two manipulations were set up (a
// translation or a null binding).
const (
	KernelCTSrcNAT     = 0x10  // IPS_SRC_NAT: the source is translated
	KernelCTDstNAT     = 0x20  // IPS_DST_NAT: the destination is translated
	KernelCTSrcNATDone = 0x80  // IPS_SRC_NAT_DONE
	KernelCTDstNATDone = 0x100 // IPS_DST_NAT_DONE
)

// ctnetlink's message and attributes (linux/netfilter/nfnetlink_conntrack.h),
// which golang.org/x/sys/unix does not have.
const (
	nfnlSubsysCTNetlink = 1 // NFNL_SUBSYS_CTNETLINK
	ipctnlMsgCTGet      = 1 // IPCTNL_MSG_CT_GET

	ctaTupleOrig     = 1  // CTA_TUPLE_ORIG
	ctaTupleReply    = 2  // CTA_TUPLE_REPLY
	ctaStatus        = 3  // CTA_STATUS (be32)
	ctaProtoinfo     = 4  // CTA_PROTOINFO
	ctaTimeout       = 7  // CTA_TIMEOUT
	ctaCountersOrig  = 9  // CTA_COUNTERS_ORIG
	ctaCountersReply = 10 // CTA_COUNTERS_REPLY

	ctaCountersPackets = 1 // CTA_COUNTERS_PACKETS (be64)
	ctaCountersBytes   = 2 // CTA_COUNTERS_BYTES (be64)

	ctaTupleIP    = 1 // CTA_TUPLE_IP
	ctaTupleProto = 2 // CTA_TUPLE_PROTO

	ctaIPv4Src = 1 // CTA_IP_V4_SRC
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum        = 1 // CTA_PROTO_NUM
	ctaProtoSrcPort    = 2
	ctaProtoDstPort    = 3
	ctaProtoICMPID     = 4
	ctaProtoICMPType   = 5
	ctaProtoICMPCode   = 6
	ctaProtoICMPv6ID   = 7
	ctaProtoICMPv6Type = 8
	ctaProtoICMPv6Code = 9

	ctaProtoinfoTCP      = 1 // CTA_PROTOINFO_TCP
	ctaProtoinfoTCPState = 1 // CTA_PROTOINFO_TCP_STATE
)

// Conns dumps the router's conntrack table, IPv4 and IPv6, over
// ctnetlink. Not with the netlink library: it decodes neither ICMP's
// identifier, type and code nor, for a dump of both families, IPv6.
func (k *KernelCT) Conns() ([]KernelConn, error) {
	k.nlSeq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+4))
	binary.NativeEndian.PutUint16(msg[4:], nfnlSubsysCTNetlink<<8|ipctnlMsgCTGet)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], k.nlSeq)
	msg = append(msg, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0) // struct nfgenmsg: every family
	if err := unix.Sendto(k.nfnl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netns %s: ctnetlink: dump: %w", k.NS.Name, err)
	}
	var out []KernelConn
	buf := make([]byte, 1<<16)
	for done := false; !done; {
		n, _, err := unix.Recvfrom(k.nfnl, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netns %s: ctnetlink: dump: %w", k.NS.Name, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("ctnetlink: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != k.nlSeq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				done = true
				continue
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("netns %s: ctnetlink: dump: %w", k.NS.Name, unix.Errno(-errno))
					}
				}
				continue
			}
			if len(m.Data) < 4 {
				continue
			}
			out = append(out, parseKernelConn(m.Data[4:])) // after struct nfgenmsg
		}
	}
	return out, nil
}

// kernelTuple is one direction's tuple of a ctnetlink dump.
type kernelTuple struct {
	proto            uint8
	src, dst         net.IP
	sport, dport     uint16
	icmpID           uint16
	icmpType, icmpCd uint8
}

// parseKernelTuple decodes a CTA_TUPLE_ORIG or CTA_TUPLE_REPLY.
func parseKernelTuple(b []byte) kernelTuple {
	var tp kernelTuple
	for _, t := range nlAttrs(b) {
		switch t.typ {
		case ctaTupleIP:
			for _, ip := range nlAttrs(t.val) {
				switch ip.typ {
				case ctaIPv4Src, ctaIPv6Src:
					tp.src = net.IP(bytes.Clone(ip.val))
				case ctaIPv4Dst, ctaIPv6Dst:
					tp.dst = net.IP(bytes.Clone(ip.val))
				}
			}
		case ctaTupleProto:
			for _, p := range nlAttrs(t.val) {
				switch {
				case p.typ == ctaProtoNum && len(p.val) == 1:
					tp.proto = p.val[0]
				case p.typ == ctaProtoSrcPort && len(p.val) == 2:
					tp.sport = binary.BigEndian.Uint16(p.val)
				case p.typ == ctaProtoDstPort && len(p.val) == 2:
					tp.dport = binary.BigEndian.Uint16(p.val)
				case (p.typ == ctaProtoICMPID || p.typ == ctaProtoICMPv6ID) && len(p.val) == 2:
					tp.icmpID = binary.BigEndian.Uint16(p.val)
				case (p.typ == ctaProtoICMPType || p.typ == ctaProtoICMPv6Type) && len(p.val) == 1:
					tp.icmpType = p.val[0]
				case (p.typ == ctaProtoICMPCode || p.typ == ctaProtoICMPv6Code) && len(p.val) == 1:
					tp.icmpCd = p.val[0]
				}
			}
		}
	}
	return tp
}

// parseKernelConn decodes one connection's ctnetlink attributes.
func parseKernelConn(b []byte) KernelConn {
	var c KernelConn
	for _, a := range nlAttrs(b) {
		switch a.typ {
		case ctaTupleOrig:
			tp := parseKernelTuple(a.val)
			c.Proto, c.Src, c.Dst, c.Sport, c.Dport = tp.proto, tp.src, tp.dst, tp.sport, tp.dport
			c.ICMPID, c.ICMPType, c.ICMPCode = tp.icmpID, tp.icmpType, tp.icmpCd
		case ctaTupleReply:
			tp := parseKernelTuple(a.val)
			c.ReplySrc, c.ReplyDst, c.ReplySport, c.ReplyDport = tp.src, tp.dst, tp.sport, tp.dport
			c.ReplyICMPID = tp.icmpID
		case ctaStatus:
			if len(a.val) == 4 {
				c.Status, c.HasStatus = binary.BigEndian.Uint32(a.val), true
			}
		case ctaProtoinfo:
			for _, pi := range nlAttrs(a.val) {
				if pi.typ != ctaProtoinfoTCP {
					continue
				}
				for _, t := range nlAttrs(pi.val) {
					if t.typ == ctaProtoinfoTCPState && len(t.val) == 1 {
						c.TCPState, c.HasTCPInfo = t.val[0], true
					}
				}
			}
		case ctaTimeout:
			if len(a.val) == 4 {
				c.Timeout = binary.BigEndian.Uint32(a.val)
			}
		case ctaCountersOrig, ctaCountersReply:
			dir := 0
			if a.typ == ctaCountersReply {
				dir = 1
			}
			for _, n := range nlAttrs(a.val) {
				switch {
				case n.typ == ctaCountersPackets && len(n.val) == 8:
					c.Packets[dir] = binary.BigEndian.Uint64(n.val)
				case n.typ == ctaCountersBytes && len(n.val) == 8:
					c.Bytes[dir] = binary.BigEndian.Uint64(n.val)
				}
			}
			c.HasCounters = true
		}
	}
	return c
}

// Flush empties the router's conntrack table.
func (k *KernelCT) Flush() error {
	if err := k.h.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
		return fmt.Errorf("netns %s: conntrack flush: %w", k.NS.Name, err)
	}
	return nil
}
