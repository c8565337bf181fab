#!/usr/bin/env bash
# bridge_port on the real kernel: every playbook runs in a fresh network namespace of its own,
# once per target Python, through the tuntap.qemu.netns connection (see ../setup_netns/netns.sh).
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init bridge_port
netns_run_playbooks bridge.yml bridge_bad_input.yml -- "$@"

# isolated.yml: isolated bridge ports (issue 13). Three guest namespaces of this run, each
# holding the far end of one of the bridge's veth ports, so that pings between them prove
# what the isolation lets through and what not.
isolated_run_playbook() {
    local guests=() name
    for _ in 1 2 3; do
        netns_create
        guests+=("$NETNS_NAME")
    done
    netns_run_playbook isolated.yml -e "{\"guest_namespaces\": [\"${guests[0]}\", \"${guests[1]}\", \"${guests[2]}\"]}" "$@"
    for name in "${guests[@]}"; do
        netns_delete "$name"
    done
}

for python in "${NETNS_PYTHONS[@]}"; do
    TUNTAP_TARGET_PYTHON=$python isolated_run_playbook "$@"
done

# bridge_dhcp.yml: a DHCP uplink (issue 11). A LAN namespace of this run with dnsmasq, and
# dhclient in the play's namespace; every process it starts writes its pid file to its
# dhcp_dir (dnsmasq, dhclient -pf, the ping), and is ended by it - also after a failure.
dhcp_end_processes() {
    local dir=$1 pidfile pid
    for pidfile in "$dir"/*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # Only a process of ours: its command line names this folder (dnsmasq, dhclient) or
        # it is the ping of ping.pid.
        if grep -qaF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null ||
            { [[ $pidfile == */ping.pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^ping '; }; then
            kill "$pid" 2>/dev/null || true
        fi
    done
}

netns_cleanup_hook() {
    local dir
    for dir in "$NETNS_WORK_DIR"/dhcp-*; do
        [[ -d $dir ]] && dhcp_end_processes "$dir"
    done
}

# lan_run_playbook PLAYBOOK ARGS: PLAYBOOK with a LAN namespace of its own and a dhcp_dir.
lan_run_playbook() {
    local playbook=$1 lan dir
    shift
    netns_create
    lan=$NETNS_NAME
    dir=$NETNS_WORK_DIR/dhcp-$lan
    mkdir -p "$dir"
    netns_run_playbook "$playbook" -e "lan_ns=$lan" -e "dhcp_dir=$dir" "$@"
    dhcp_end_processes "$dir"
    netns_delete "$lan"
}

dhcp_run_playbook() {
    lan_run_playbook bridge_dhcp.yml "$@"
}

if [[ -x /usr/sbin/dnsmasq ]] && PATH=$PATH:/sbin:/usr/sbin command -v dhclient >/dev/null; then
    for python in "${NETNS_PYTHONS[@]}"; do
        TUNTAP_TARGET_PYTHON=$python dhcp_run_playbook "$@"
    done
else
    echo "bridge_port: SKIPPED bridge_dhcp.yml - it needs dhclient (isc-dhcp-client) and /usr/sbin/dnsmasq" >&2
fi

# bridge_slaac.yml: a LAN whose router (dnsmasq, by its pid file in dhcp_dir) advertises an
# IPv6 prefix; the uplink's SLAAC address stays the kernel's through the takeover and back (issue 13).
if [[ -x /usr/sbin/dnsmasq ]]; then
    for python in "${NETNS_PYTHONS[@]}"; do
        TUNTAP_TARGET_PYTHON=$python lan_run_playbook bridge_slaac.yml "$@"
    done
else
    echo "bridge_port: SKIPPED bridge_slaac.yml - it needs /usr/sbin/dnsmasq" >&2
fi
