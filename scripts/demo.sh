#!/usr/bin/env bash
# The Open vSwitch conntrack lab, run on ebpfovs in network namespaces.
# VM1 (10.0.10.1) and VM2 (10.0.10.2) are namespaces whose eth0 is a veth;
# the other ends, vnet1 and vnet2, sit in a "hypervisor" namespace and are
# the switch's ports. The lab is the tests' and benchmarks' one, built by
# ebpfovs-lab (testenv/cmd/lab). Everything is removed at the end, even on
# failure.
set -euo pipefail

EBPFOVS=$(readlink -f "${1:-./ebpfovs}")
LAB=$(readlink -f "${2:-./ebpfovs-lab}")
[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (sudo make demo)" >&2; exit 1; }

tag=ebpfovs-demo-$$
BR=demo$$
HOST=
pids=()

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [[ -z $HOST ]] || "$EBPFOVS" -b "$BR" --netns "$HOST" detach >/dev/null 2>&1
  "$LAB" down --tag "$tag"
}
trap cleanup EXIT

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# ovs: show the command as a user types it, run it against the demo bridge.
ovs() {
  local a line='$ ebpfovs'
  for a in "$@"; do
    if [[ $a == *[\ \(\),]* ]]; then line+=" \"$a\""; else line+=" $a"; fi
  done
  printf '%s\n' "$line"
  "$EBPFOVS" -b "$BR" --netns "$HOST" "$@"
}
vm() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }

# The namespaces HOST, VM1 and VM2, the VMs' addresses VMn_IP and their
# ports VMn_PORT, as shell assignments.
lab=$("$LAB" up --tag "$tag")
eval "$lab"
bold "Topology: VM1 ($VM1_IP) -- $VM1_PORT [ebpfovs] $VM2_PORT -- VM2 ($VM2_IP)"

bold "Attach the datapath to the VM ports (a new bridge starts with priority=0 actions=NORMAL)"
ovs attach "$VM1_PORT" "$VM2_PORT"

bold "flow-1 and flow-2: VM1 may open TCP connections to VM2; replies are not tracked yet"
ovs add-flow "table=0, priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0)"
ovs add-flow "table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit),vnet2"

connect() { # connect VM1 -> VM2:5000, hold the connection open for $1 seconds
  vm "$VM2" timeout 10 nc -l 5000 >/dev/null 2>&1 &
  pids+=($!)
  sleep 0.5
  # -N: shut the connection down when stdin ends, so both ends close.
  (sleep "$1") | vm "$VM1" timeout 10 nc -N -v "$VM2_IP" 5000 2>&1 | sed 's/^/VM1: /' &
  pids+=($!)
  sleep 1
}

bold "VM2: nc -l 5000    VM1: nc -v $VM2_IP 5000"
connect 2
ovs dump-conntrack
echo "(SYN_SENT: the SYN was committed; VM2's answer took the NORMAL flow, untracked)"
sleep 2

bold "flow-3 and flow-4: VM2's side goes through conntrack; established replies may return"
ovs add-flow "table=0, priority=50, ct_state=-trk, tcp, in_port=vnet2, actions=ct(table=0)"
ovs add-flow "table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet2, actions=vnet1"
ovs flush-conntrack
connect 2
ovs dump-conntrack
sleep 2.5
bold "After both ends closed:"
ovs dump-conntrack

bold "flow-5: established traffic from VM1 no longer needs the NORMAL flow"
ovs add-flow "table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet1, actions=vnet2"
ovs dump-flows --names

bold "With the default NORMAL flow, VM2 can still open connections to VM1:"
echo "(its SYN is +trk+new, which no lab flow matches, so it falls to priority=0 NORMAL, as on Open vSwitch)"
vm "$VM1" timeout 5 nc -l 6000 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
vm "$VM2" timeout 3 nc -z -w 2 "$VM1_IP" 6000 && echo "VM2: nc -z $VM1_IP 6000: connected"

bold "Make the firewall strict: NORMAL only for ARP"
ovs del-flows --strict "priority=0"
ovs add-flow "priority=0, arp, actions=NORMAL"
vm "$VM1" timeout 5 nc -l 6000 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
if vm "$VM2" timeout 3 nc -z -w 2 "$VM1_IP" 6000; then
  echo "VM2: connected (unexpected)"; exit 1
fi
echo "VM2: nc -z $VM1_IP 6000: refused by the flows (no flow allows a new connection from vnet2)"
connect 1
ovs dump-conntrack
echo "(VM1 -> VM2 still works: the lab's flows carry it both ways)"
sleep 1.5
ovs show
bold "Done; removing the namespaces and the bridge."
