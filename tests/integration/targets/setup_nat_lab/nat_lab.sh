# shellcheck shell=bash
# The NAT lab of the masquerade and port_forward targets; sourced by their runme.sh:
#
#     source ../setup_nat_lab/nat_lab.sh
#     nat_lab_init masquerade
#     nat_lab_run_playbooks masquerade_nft.yml masquerade_bad_input.yml -- "$@"
#
# Every playbook runs in a fresh lab of its own, once per target Python (the Python running
# ansible, and Debian's /usr/bin/python3 when it has netaddr and pyroute2). A lab is five
# network namespaces, ttq-nat-<pid>-<n>-{hv,g1,g2,lan,other}:
#
#     lan    eth0 198.51.100.10/24 2001:db8:100::10/64   the LAN peer; routes back to "other"
#       |                                                only, never to the guest subnet
#     hv     eth0 198.51.100.2/24 2001:db8:100::2/64     the hypervisor the modules run in;
#            (default routes via .1 and ::1 make eth0 its uplink), IP forwarding on,
#            br0 192.168.50.1/24 fd00:50::1/64 with ports vg1 and vg2,
#            vo1 10.77.0.1/24 (a routed network the modules do not manage)
#       |                 |                  |
#     g1 eth0 .50.10     g2 eth0 .50.11     other eth0 10.77.0.10/24
#     (guests on the bridge, default route via the hypervisor)
#
# peer.py servers answer each connection with their name and the peer address they see:
# lan on tcp 7000 and 8080, udp 7001; g1 on tcp 80 and 7000, udp 5353.
#
# Files: /etc/netns/<hv>/nftables.conf (an admin's file with a marker line), nftables.d/ and
# network/if-up.d/. The playbooks point the modules' nft_file and nftables_conf there (an
# atomic rename cannot replace a single bind-mounted file, and /etc/nftables.d may not exist
# on the host); hook_file stays /etc/network/if-up.d/... when the host has /etc/network,
# which `ip netns exec` then replaces by the namespace's folder.
#
# Nothing is created in the root namespace: links are made inside the lab namespaces (veth
# peers straight into their namespace). An EXIT trap stops the servers by PID, deletes the
# namespaces and /etc/netns/<ns>, and fails the run if the root namespace's links,
# addresses, routes, forwarding and bridge sysctls, nftables ruleset or legacy iptables
# tables, or the host's /etc/nftables.conf, /etc/nftables.d or /etc/network/if-up.d differ
# from what nat_lab_init recorded.
#
# Environment: TUNTAP_TARGET_PYTHONS / TUNTAP_TARGET_PYTHON as in setup_netns.

NAT_LAB_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
NAT_PREFIX=
NAT_COUNT=0
NAT_CREATED=()
NAT_PIDS=()
NAT_WORK_DIR=
NAT_ROOT_BEFORE=
NAT_MADE_ETC_NETNS=false
NAT_ANSIBLE_PYTHON=
NAT_PYTHONS=()
NAT_HELPER_PYTHON=/usr/bin/python3
NAT_GUARD_FILE=.ttq-nat-guard
# Names of the current lab's namespaces.
NAT_HV=
NAT_G1=
NAT_G2=
NAT_LAN=
NAT_OTHER=

# nat_lab_init TARGET: record the root namespace's state, arm the cleanup trap.
nat_lab_init() {
    NAT_PREFIX="ttq-nat-$$"
    if ((EUID != 0)); then
        echo "nat_lab: network namespaces need root" >&2
        exit 1
    fi
    if [[ ! -x $NAT_HELPER_PYTHON ]]; then
        NAT_HELPER_PYTHON=$(command -v python3)
    fi
    NAT_WORK_DIR=$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    trap nat_lab_cleanup EXIT
    NAT_ROOT_BEFORE=$NAT_WORK_DIR/root-before.txt
    nat_root_state >"$NAT_ROOT_BEFORE"
    NAT_ANSIBLE_PYTHON=$(nat_ansible_python)
    export ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-true}
}

# Everything the tests must leave alone, read without changing anything.
nat_root_state() {
    local key path save
    ip -o link show | sed -e 's/^[0-9]*: \([^:@]*\)[:@].*/link \1/' | sort
    ip -o address show | awk '{print "address", $2, $3, $4}' | sort
    ip route show table all | sort
    ip -6 route show table all | sort
    for key in net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/bridge/bridge-nf-call-iptables \
        net/bridge/bridge-nf-call-ip6tables; do
        if [[ -r /proc/sys/$key ]]; then
            printf 'sysctl %s = %s\n' "$key" "$(<"/proc/sys/$key")"
        fi
    done
    echo '## nft -s list ruleset'
    nft -s list ruleset
    for save in iptables-legacy-save ip6tables-legacy-save; do
        if command -v "$save" >/dev/null; then
            echo "## $save"
            "$save" | sed -e '/^# \(Generated\|Completed\) /d' -e 's/ \[[0-9]*:[0-9]*\]//'
        fi
    done
    for path in /etc/nftables.conf /etc/nftables.d /etc/network/if-up.d; do
        if [[ -e $path ]]; then
            ls -ld --time-style=full-iso "$path"
            find "$path" -maxdepth 1 -type f -exec sha256sum {} + | sort
        else
            echo "absent $path"
        fi
    done
    find /etc -maxdepth 1 -name '.tuntap-*'
}

nat_ansible_python() {
    local python
    if [[ -n ${ANSIBLE_TEST_PYTHON_INTERPRETER:-} ]]; then
        printf '%s\n' "$ANSIBLE_TEST_PYTHON_INTERPRETER"
        return 0
    fi
    python=$(ansible-playbook --version | sed -n 's/^ *python version = .*(\(\/[^)]*\))$/\1/p')
    printf '%s\n' "${python:-$(command -v python3)}"
}

nat_target_pythons() {
    NAT_PYTHONS=()
    if [[ -n ${TUNTAP_TARGET_PYTHONS:-} ]]; then
        read -r -a NAT_PYTHONS <<<"$TUNTAP_TARGET_PYTHONS"
        return 0
    fi
    if [[ -n ${TUNTAP_TARGET_PYTHON:-} ]]; then
        NAT_PYTHONS=("$TUNTAP_TARGET_PYTHON")
        return 0
    fi
    NAT_PYTHONS=("$NAT_ANSIBLE_PYTHON")
    if [[ /usr/bin/python3 != "$NAT_ANSIBLE_PYTHON" ]]; then
        if /usr/bin/python3 -c 'import netaddr, pyroute2' 2>/dev/null; then
            NAT_PYTHONS+=(/usr/bin/python3)
        else
            echo "nat_lab: /usr/bin/python3 lacks netaddr or pyroute2; testing with $NAT_ANSIBLE_PYTHON only" >&2
        fi
    fi
}

nat_ns_add() {
    if [[ -e /run/netns/$1 || -e /etc/netns/$1 ]]; then
        echo "nat_lab: $1 exists already (a stale run?); not touching it" >&2
        return 1
    fi
    ip netns add "$1"
    NAT_CREATED+=("$1")
    ip -n "$1" link set lo up
    # No duplicate address detection: addresses are usable at once.
    ip netns exec "$1" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# nat_ns_addr NS DEV ADDRESS...: addresses, then the link up.
nat_ns_addr() {
    local ns=$1 dev=$2 address
    shift 2
    for address in "$@"; do
        ip -n "$ns" address add "$address" dev "$dev"
    done
    ip -n "$ns" link set "$dev" up
}

# nat_start_server NS NAME TCP-PORTS UDP-PORTS: a peer.py server in NS, its PID remembered.
nat_start_server() {
    local ns=$1 name=$2 ready=$NAT_WORK_DIR/$1.ready tries=0
    rm -f "$ready"
    ip netns exec "$ns" "$NAT_HELPER_PYTHON" "$NAT_LAB_DIR/peer.py" serve --name "$name" \
        --tcp "$3" --udp "$4" --ready "$ready" >"$NAT_WORK_DIR/$1.log" 2>&1 &
    NAT_PIDS+=("$!")
    until [[ -f $ready ]]; do
        tries=$((tries + 1))
        if ((tries > 100)); then
            echo "nat_lab: the server in $ns did not start" >&2
            cat "$NAT_WORK_DIR/$1.log" >&2
            return 1
        fi
        sleep 0.05
    done
}

# nat_lab_up: a fresh lab (see the top of this file).
nat_lab_up() {
    local base admin_conf
    NAT_COUNT=$((NAT_COUNT + 1))
    base="$NAT_PREFIX-$NAT_COUNT"
    NAT_HV=$base-hv NAT_G1=$base-g1 NAT_G2=$base-g2 NAT_LAN=$base-lan NAT_OTHER=$base-other
    for ns in "$NAT_HV" "$NAT_G1" "$NAT_G2" "$NAT_LAN" "$NAT_OTHER"; do
        nat_ns_add "$ns"
    done
    ip -n "$NAT_HV" link add eth0 type veth peer name eth0 netns "$NAT_LAN"
    ip -n "$NAT_HV" link add br0 type bridge forward_delay 0
    ip -n "$NAT_HV" link add vg1 type veth peer name eth0 netns "$NAT_G1"
    ip -n "$NAT_HV" link add vg2 type veth peer name eth0 netns "$NAT_G2"
    ip -n "$NAT_HV" link add vo1 type veth peer name eth0 netns "$NAT_OTHER"
    ip -n "$NAT_HV" link set vg1 master br0 up
    ip -n "$NAT_HV" link set vg2 master br0 up
    nat_ns_addr "$NAT_HV" eth0 198.51.100.2/24 2001:db8:100::2/64
    nat_ns_addr "$NAT_HV" br0 192.168.50.1/24 fd00:50::1/64
    nat_ns_addr "$NAT_HV" vo1 10.77.0.1/24
    ip -n "$NAT_HV" route add default via 198.51.100.1
    ip -n "$NAT_HV" -6 route add default via 2001:db8:100::1
    ip netns exec "$NAT_HV" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    nat_ns_addr "$NAT_LAN" eth0 198.51.100.10/24 2001:db8:100::10/64
    ip -n "$NAT_LAN" route add 10.77.0.0/24 via 198.51.100.2
    nat_ns_addr "$NAT_G1" eth0 192.168.50.10/24 fd00:50::10/64
    nat_ns_addr "$NAT_G2" eth0 192.168.50.11/24 fd00:50::11/64
    for ns in "$NAT_G1" "$NAT_G2"; do
        ip -n "$ns" route add default via 192.168.50.1
        ip -n "$ns" -6 route add default via fd00:50::1
    done
    nat_ns_addr "$NAT_OTHER" eth0 10.77.0.10/24
    ip -n "$NAT_OTHER" route add default via 10.77.0.1

    if [[ ! -d /etc/netns ]]; then
        mkdir -p /etc/netns
        NAT_MADE_ETC_NETNS=true
    fi
    mkdir -p "/etc/netns/$NAT_HV/nftables.d" "/etc/netns/$NAT_HV/network/if-up.d"
    printf '%s\n' "$NAT_HV" >"/etc/netns/$NAT_HV/network/$NAT_GUARD_FILE"
    admin_conf="/etc/netns/$NAT_HV/nftables.conf"
    # The admin's own file, which the modules may only extend by their include block.
    cat >"$admin_conf" <<CONF
#!/usr/sbin/nft -f
# $NAT_GUARD_FILE $NAT_HV: the admin's nftables.conf of this lab

table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
	}
}
CONF
    chmod 0755 "$admin_conf"

    nat_start_server "$NAT_LAN" lan 7000,8080 7001
    nat_start_server "$NAT_G1" g1 80,7000 5353
}

# nat_write_inventory FILE PYTHON
nat_write_inventory() {
    local hook_file=/etc/netns/$NAT_HV/network/if-up.d/tuntap-qemu
    if [[ -d /etc/network ]]; then
        hook_file=/etc/network/if-up.d/tuntap-qemu
    fi
    cat >"$1" <<INI
[lab]
hypervisor ansible_host=$NAT_HV
g1 ansible_host=$NAT_G1
g2 ansible_host=$NAT_G2
lan ansible_host=$NAT_LAN
other ansible_host=$NAT_OTHER

[lab:vars]
ansible_connection=tuntap.qemu.netns
ansible_python_interpreter=$2
nat_namespace=$NAT_HV
nat_etc=/etc/netns/$NAT_HV
nat_nft_file=/etc/netns/$NAT_HV/nftables.d/tuntap-qemu.nft
nat_nftables_conf=/etc/netns/$NAT_HV/nftables.conf
nat_hook_file=$hook_file
nat_guard_file=$NAT_GUARD_FILE
nat_helper_python=$NAT_HELPER_PYTHON
nat_peer=$NAT_LAB_DIR/peer.py
nat_ruleset=$NAT_LAB_DIR/ruleset.py
nat_tasks=$NAT_LAB_DIR/tasks
INI
}

nat_stop_servers() {
    local pid
    for pid in "${NAT_PIDS[@]}"; do
        if kill "$pid" 2>/dev/null; then
            # The server's exit status is that of SIGTERM; it is expected.
            wait "$pid" 2>/dev/null || true
        fi
    done
    NAT_PIDS=()
}

nat_ns_delete() {
    case $1 in
        "$NAT_PREFIX"-*) ;;
        *) echo "nat_lab: not deleting $1, which this run did not create" >&2; return 1 ;;
    esac
    if [[ -e /run/netns/$1 ]]; then
        ip netns delete "$1"
    fi
    rm -rf -- "/etc/netns/$1"
}

nat_lab_down() {
    local ns
    nat_stop_servers
    for ns in "$NAT_HV" "$NAT_G1" "$NAT_G2" "$NAT_LAN" "$NAT_OTHER"; do
        nat_ns_delete "$ns"
    done
}

# nat_lab_run_playbooks PLAYBOOK... [-- ANSIBLE-PLAYBOOK ARGS...]
nat_lab_run_playbooks() {
    local playbooks=() args=() python playbook inventory start
    while (($#)); do
        if [[ $1 == -- ]]; then
            shift
            args=("$@")
            break
        fi
        playbooks+=("$1")
        shift
    done
    nat_target_pythons
    for python in "${NAT_PYTHONS[@]}"; do
        for playbook in "${playbooks[@]}"; do
            start=$SECONDS
            nat_lab_up
            inventory=$NAT_WORK_DIR/$NAT_HV.ini
            nat_write_inventory "$inventory" "$python"
            ansible-playbook -i "$inventory" "${args[@]}" "$playbook"
            nat_lab_down
            echo "nat_lab: $playbook passed in $((SECONDS - start))s with $python"
        done
    done
}

nat_lab_cleanup() {
    local rc=$? name
    set +e
    nat_stop_servers
    for name in "${NAT_CREATED[@]}"; do
        nat_ns_delete "$name"
    done
    if $NAT_MADE_ETC_NETNS; then
        rmdir /etc/netns 2>/dev/null
    fi
    if [[ -f $NAT_ROOT_BEFORE ]] && ! nat_root_state | diff -u "$NAT_ROOT_BEFORE" - >&2; then
        echo "nat_lab: the root namespace or the host's nftables/ifupdown files changed (diff above)" >&2
        rc=1
    fi
    rm -rf -- "$NAT_WORK_DIR"
    exit "$rc"
}
