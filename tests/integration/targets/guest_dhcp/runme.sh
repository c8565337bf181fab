#!/usr/bin/env bash
# guest_dhcp on the real kernel: for each target Python, a hypervisor namespace (br0 with
# 192.168.60.1/24, a veth "tap" tap0 with 192.168.61.1/24) and three guest namespaces (two on
# br0 - one planned, one unknown MAC - and one behind tap0), a real dnsmasq (service=process)
# and busybox udhcpc / nslookup in the guests; then ipv6.yml in the same namespaces: router
# advertisements (SLAAC) and AAAA records (br0 fd00:60::1/64, tap0 fd00:61::1/64). Our dnsmasq
# and the foreign servers the playbook starts are ended by their pids (pidfiles in the run's
# folder) before the namespaces go.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init guest_dhcp
netns_target_pythons

# dnsmasq drops root for the user dnsmasq and rereads its files on SIGHUP: they live in a
# folder that user can traverse.
DHCP_WORK=$(mktemp -d /tmp/ttq-guest-dhcp.XXXXXX)
chmod 0755 "$DHCP_WORK"

netns_cleanup_hook() {
    local pidfile pid
    for pidfile in "$DHCP_WORK"/*/run/dnsmasq.pid "$DHCP_WORK"/*/foreign-*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        # Only a process of this run: its command line names this run's folder.
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -- "$DHCP_WORK" >/dev/null; then
            kill "$pid" || true
        fi
    done
    rm -rf -- "$DHCP_WORK"
}

lab() {
    local host=$1 g1=$2 g2=$3 g3=$4
    ip -n "$host" link set lo up
    ip -n "$host" link add br0 type bridge
    ip -n "$host" addr add 192.168.60.1/24 dev br0
    ip -n "$host" link set br0 up
    ip -n "$host" link add vb1 type veth peer name eth0 netns "$g1"
    ip -n "$host" link add vb3 type veth peer name eth0 netns "$g3"
    ip -n "$host" link add tap0 type veth peer name eth0 netns "$g2"
    ip -n "$host" addr add 192.168.61.1/24 dev tap0
    for port in vb1 vb3; do
        ip -n "$host" link set "$port" master br0 up
    done
    ip -n "$host" link set tap0 up
    # IPv6 (ipv6.yml): the host side of each network, without duplicate address detection so
    # that dnsmasq can bind it at once; the guests accept router advertisements (autoconf).
    ip -n "$host" addr add fd00:60::1/64 dev br0 nodad
    ip -n "$host" addr add fd00:61::1/64 dev tap0 nodad
    ip -n "$g1" link set eth0 address 52:54:00:60:00:0a
    ip -n "$g2" link set eth0 address 52:54:00:61:00:0b
    ip -n "$g3" link set eth0 address 52:54:00:60:00:99
    for guest in "$g1" "$g2" "$g3"; do
        ip -n "$guest" link set lo up
        ip netns exec "$guest" sysctl -q -w net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1
        ip -n "$guest" link set eth0 up
    done
}

run=0
for python in "${NETNS_PYTHONS[@]}"; do
    netns_describe_python "$python"
    run=$((run + 1))
    start=$SECONDS
    names=()
    for _ in 1 2 3 4; do
        netns_create
        names+=("$NETNS_NAME")
    done
    lab "${names[@]}"
    NETNS_NAME=${names[0]}
    inventory=$NETNS_WORK_DIR/$run.ini
    TUNTAP_TARGET_PYTHON=$python netns_write_inventory "$inventory"
    mkdir -p "$DHCP_WORK/$run"
    ansible-playbook -i "$inventory" -e "dhcp_work=$DHCP_WORK/$run" \
        -e "guest1_ns=${names[1]} guest2_ns=${names[2]} guest3_ns=${names[3]}" \
        -e "udhcpc_script=$PWD/udhcpc_script.sh foreign_socket=$PWD/foreign_socket.py" \
        "$@" guest_dhcp.yml
    ansible-playbook -i "$inventory" -e "dhcp_work=$DHCP_WORK/$run" \
        -e "guest1_ns=${names[1]} guest2_ns=${names[2]}" "$@" ipv6.yml
    for name in "${names[@]}"; do
        netns_delete "$name"
    done
    echo "guest_dhcp: guest_dhcp.yml and ipv6.yml passed in $((SECONDS - start))s with $python"
done
