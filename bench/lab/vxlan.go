package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ebpfovs/ebpfovs/loader"
)

// Two-node VXLAN paths (the OpenStack issue's benchmark): VM1 on node 1,
// VM2 on node 2, the nodes joined by a veth "physical network"
// (172.31.0.1 and .2), the VMs' traffic in a VXLAN tunnel (VNI 100, UDP
// 4789) between them, the VMs at MTU 1450 (VXLAN's 50 bytes on the nodes'
// 1500).
//
//	L  each node a Linux bridge of the VM's port and a VXLAN device
//	   (remote: the other node), the topology without ebpfovs
//	M  each node an ebpfovs bridge of the VM's port and a VXLAN port
//	   (options:remote_ip, options:key=100), switching by NORMAL

// vxlanNodeIP is node n's (1, 2) address on the physical network.
func vxlanNodeIP(n int) string { return fmt.Sprintf("172.31.0.%d", n) }

// setupVXLAN builds path L or, with bin, path M.
func setupVXLAN(ctx context.Context, env *Env, bin, id string) (*Path, error) {
	p := &Path{ID: id, Name: "Linux bridge + VXLAN, two nodes", Port: "vnet1"}
	if id == "M" {
		p.Name = "ebpfovs + VXLAN port, two nodes"
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("ebpfovs binary (make build): %w", err)
		}
	}
	base := env.Tag + "-" + strings.ToLower(id)
	node := [3]string{"", base + "-n1", base + "-n2"}
	vm := [3]string{"", base + "-vm1", base + "-vm2"}
	for _, ns := range []string{node[1], node[2], vm[1], vm[2]} {
		if _, err := Run(ctx, "ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		ns := ns
		env.Cleanup.Push("delete netns "+ns, func() error {
			_, err := Run(context.Background(), "ip", "netns", "del", ns)
			return err
		})
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err := Sysctl(ctx, ns, k, "1"); err != nil {
				return nil, err
			}
		}
		if _, err := Run(ctx, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	p.Host, p.VM1, p.VM2 = node[1], vm[1], vm[2]
	steps := [][]string{{"ip", "-n", node[1], "link", "add", "phy0", "type", "veth", "peer", "name", "phy0", "netns", node[2]}}
	for n := 1; n <= 2; n++ {
		ip := []string{VM1IP, VM2IP}[n-1]
		steps = append(steps,
			[]string{"ip", "-n", node[n], "addr", "add", vxlanNodeIP(n) + "/24", "dev", "phy0"},
			[]string{"ip", "-n", node[n], "link", "set", "phy0", "up"},
			[]string{"ip", "-n", node[n], "link", "add", "vnet1", "type", "veth", "peer", "name", "eth0", "netns", vm[n]},
			[]string{"ip", "-n", node[n], "link", "set", "vnet1", "up"},
			[]string{"ip", "-n", vm[n], "link", "set", "eth0", "address", VMMAC(n), "mtu", "1450", "up"},
			[]string{"ip", "-n", vm[n], "addr", "add", ip + "/24", "dev", "eth0"})
		if id == "L" {
			steps = append(steps,
				[]string{"ip", "-n", node[n], "link", "add", "vx0", "type", "vxlan", "id", "100", "remote", vxlanNodeIP(3 - n),
					"local", vxlanNodeIP(n), "dstport", "4789"},
				[]string{"ip", "-n", node[n], "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
				[]string{"ip", "-n", node[n], "link", "set", "vnet1", "master", "br0"},
				[]string{"ip", "-n", node[n], "link", "set", "vx0", "master", "br0"},
				[]string{"ip", "-n", node[n], "link", "set", "vx0", "up"},
				[]string{"ip", "-n", node[n], "link", "set", "br0", "up"})
		}
	}
	for _, s := range steps {
		if _, err := Run(ctx, s...); err != nil {
			return nil, err
		}
	}
	if id == "L" {
		p.Check = func(ctx context.Context) (string, error) {
			out, err := Run(ctx, "ip", "-n", node[1], "-s", "link", "show", "vx0")
			if err != nil {
				return "", err
			}
			return "node 1's VXLAN device: " + strings.Join(strings.Fields(out), " "), nil
		}
		return p, nil
	}
	bpffs, err := env.mountBPFFS(p.ID)
	if err != nil {
		return nil, err
	}
	for n := 1; n <= 2; n++ {
		n := n
		ovs := func(ctx context.Context, args ...string) (string, error) {
			return RunLong(ctx, append([]string{bin, "--netns", node[n], "--bpffs", fmt.Sprintf("%s/n%d", bpffs, n), "-b", "br0"}, args...)...)
		}
		out, err := ovs(ctx, "attach", "vnet1")
		if err != nil {
			return nil, err
		}
		env.Cleanup.Push(fmt.Sprintf("ebpfovs detach %s node %d", p.ID, n), func() error {
			_, err := ovs(context.Background(), "detach")
			return err
		})
		out2, err := ovs(ctx, "add-port", "vx0", "type=vxlan", "options:remote_ip="+vxlanNodeIP(3-n), "options:key=100")
		if err != nil {
			return nil, err
		}
		if n == 1 {
			p.Notes = append(p.Notes, "node 1: "+strings.Join(strings.Fields(out+out2), " "))
			p.BPFProgPin = fmt.Sprintf("%s/n1/br0/%s", bpffs, loader.PinProgTCIngress)
			p.Check = func(ctx context.Context) (string, error) {
				show, err := ovs(ctx, "show")
				if err != nil {
					return "", err
				}
				i := strings.Index(show, "2(vx0)")
				if i < 0 {
					return "", errors.New("no VXLAN port vx0 on node 1")
				}
				return "node 1's ebpfovs bridge: " + strings.Join(strings.Fields(show[i:]), " "), nil
			}
		}
	}
	return p, nil
}
