#!/usr/bin/env bash
# rtnl_snapshot.read_snapshot() must return what the pyroute2 reference reader (pyroute2_reader.py beside this file) returns.
#
# Builds one network namespace (ttq-rtnl-<pid>) holding a mix of links: taps with and
# without owner and group, multi_queue and vnet_hdr taps, a tun, two bridges (STP and
# forward delay set on one), a veth pair with one end in a bridge, an isolated bridge port, IPv4 and IPv6 addresses
# (one with a peer, so IFA_LOCAL differs from IFA_ADDRESS), links down and up, changed
# MTUs. Then compare_snapshots.py runs inside it once per Python with pyroute2, so both
# library versions serve as the reference: Debian's python3-pyroute2 (0.7.x) under
# /usr/bin/python3 and a pip-installed one (0.9.x) where ansible runs from a virtual
# environment or pyenv.
#
# Links are created with `ip -n NS`, never in the root namespace; an EXIT trap deletes the
# namespace, also after a failure.
#
# TUNTAP_TARGET_PYTHONS (interpreters separated by spaces) replaces the search for Pythons
# with pyroute2. ansible-test does not pass the caller's environment to targets: to set it,
# run this script directly from the collection's tests/integration/targets/rtnl_snapshot.
set -eux -o pipefail

netns="ttq-rtnl-$$"
work_dir="$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/rtnl_snapshot.XXXXXX")"

cleanup() {
    if [ -e "/run/netns/${netns}" ]; then
        ip netns delete "${netns}"
    fi
    rm -rf -- "${work_dir}"
}
trap cleanup EXIT

if [ -e "/run/netns/${netns}" ]; then
    echo "namespace ${netns} exists already (a stale run?); not touching it" >&2
    exit 1
fi

# Every interpreter that may run the modules; those with pyroute2 are compared, each
# (interpreter binary, pyroute2 installation) pair once: a virtual environment made with
# --system-site-packages from /usr/bin/python3 is the same pair as /usr/bin/python3.
candidates=()
if [ -n "${TUNTAP_TARGET_PYTHONS:-}" ]; then
    read -r -a candidates <<<"${TUNTAP_TARGET_PYTHONS}"
else
    if [ -n "${ANSIBLE_TEST_PYTHON_INTERPRETER:-}" ]; then
        candidates+=("${ANSIBLE_TEST_PYTHON_INTERPRETER}")
    fi
    ansible_python="$(ansible-playbook --version 2>/dev/null | sed -n 's/^ *python version = .*(\(\/[^)]*\))$/\1/p' || true)"
    if [ -n "${ansible_python}" ]; then
        candidates+=("${ansible_python}")
    fi
    candidates+=(/usr/bin/python3)
    while IFS= read -r python; do
        candidates+=("${python}")
    done < <(type -ap python3 || true)
fi

pythons=()
seen=" "
for python in "${candidates[@]}"; do
    if ! identity="$("${python}" -c 'import os, sys, pyroute2; print(os.path.realpath(sys.executable) + "|" + os.path.realpath(pyroute2.__file__))' 2>/dev/null)"; then
        echo "rtnl_snapshot: ${python} has no pyroute2; skipped" >&2
        continue
    fi
    case "${seen}" in
        *" ${identity} "*) continue ;;
    esac
    seen="${seen}${identity} "
    pythons+=("${python}")
done
if [ "${#pythons[@]}" -eq 0 ]; then
    echo "rtnl_snapshot: none of ${candidates[*]} can import pyroute2" >&2
    exit 1
fi

nobody_uid="$(id -u nobody)"
if getent group nogroup >/dev/null; then group_name=nogroup; else group_name=nobody; fi
nobody_gid="$(getent group "${group_name}" | cut -d: -f3)"

ip netns add "${netns}"
# No duplicate address detection: addresses stay as they were added while the test reads.
ip netns exec "${netns}" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0

ns_ip() {
    ip -n "${netns}" "$@"
}

ns_ip link set lo up

ns_ip tuntap add dev ttr-tap0 mode tap
ns_ip tuntap add dev ttr-tap1 mode tap user "${nobody_uid}" group "${nobody_gid}"
ns_ip tuntap add dev ttr-tap2 mode tap user "${nobody_uid}" multi_queue
ns_ip tuntap add dev ttr-tap3 mode tap group "${nobody_gid}" vnet_hdr
ns_ip tuntap add dev ttr-tun0 mode tun user "${nobody_uid}"

ns_ip link add ttr-br0 type bridge stp_state 1 forward_delay 700
ns_ip link add ttr-br1 type bridge
ns_ip link set ttr-br1 mtu 1400
ns_ip link add ttr-veth0 type veth peer name ttr-veth1
ns_ip link set ttr-veth1 master ttr-br0
ns_ip link set ttr-tap1 master ttr-br0
# An isolated bridge port (IFLA_BRPORT_ISOLATED in IFLA_INFO_SLAVE_DATA) beside one that is not.
ns_ip link set dev ttr-tap1 type bridge_slave isolated on
ns_ip link set ttr-tap2 mtu 9000

for link in ttr-br0 ttr-veth0 ttr-veth1 ttr-tap1 ttr-tap2 ttr-tap3 ttr-tun0; do
    ns_ip link set "${link}" up
done
# ttr-tap0 and ttr-br1 stay down.
# The mark of _links/marks.py (IFLA_IFALIAS) on a tap and a bridge; the others have none.
ns_ip link set ttr-tap1 alias 'tuntap.qemu:tap'
ns_ip link set ttr-br0 alias 'tuntap.qemu:bridge uplink=ttr-veth1'

ns_ip addr add 192.0.2.1/24 dev ttr-br0
ns_ip addr add 198.51.100.7/32 dev ttr-br0
ns_ip addr add 2001:db8::1/64 dev ttr-br0
ns_ip addr add 2001:DB8:0:0:1:0:0:5/80 dev ttr-br0
ns_ip addr add 10.1.2.3/30 dev ttr-tap0
ns_ip addr add fd00:0:0:7::a/64 dev ttr-tap0
ns_ip addr add 10.9.9.1 peer 10.9.9.2/32 dev ttr-veth0
ns_ip addr add fe80::1234/64 dev ttr-veth0
ns_ip addr add 203.0.113.9/28 dev ttr-tun0
# An address as the kernel's SLAAC makes it (IFA_F_MANAGETEMPADDR, a finite lifetime) and the
# temporary ones (IFA_F_TEMPORARY) the kernel adds at once with use_tempaddr, one per mngtmpaddr
# address: those three are in `autoconf`, not in `addresses`; the permanent mngtmpaddr address
# is an admin's static one and stays in `addresses`.
ip netns exec "${netns}" sysctl -q -w net.ipv6.conf.ttr-veth0.use_tempaddr=2
ns_ip addr add 2001:db8:9::5/64 dev ttr-veth0 mngtmpaddr valid_lft 600 preferred_lft 300
ns_ip addr add 2001:db8:8::5/64 dev ttr-veth0 mngtmpaddr

bridge_index="$(ip netns exec "${netns}" cat /sys/class/net/ttr-br0/ifindex)"

# What runme.sh built, as the snapshot must show it (besides being equal for both readers).
cat >"${work_dir}/expected.json" <<JSON
{
  "lo": {"kind": null, "state": "up", "mac": "00:00:00:00:00:00", "addresses": ["127.0.0.1/8", "::1/128"]},
  "ttr-tap0": {"kind": "tun", "mode": "tap", "owner": null, "group": null, "multi_queue": false,
               "vnet_hdr": false, "persist": true, "state": "down", "operstate": "down", "master": null,
               "addresses": ["10.1.2.3/30", "fd00:0:0:7::a/64"]},
  "ttr-tap1": {"mode": "tap", "owner": ${nobody_uid}, "group": ${nobody_gid}, "state": "up",
               "master": "ttr-br0", "alias": "tuntap.qemu:tap", "carrier": false, "isolated": true},
  "ttr-tap2": {"mode": "tap", "owner": ${nobody_uid}, "group": null, "multi_queue": true, "mtu": 9000},
  "ttr-tap3": {"mode": "tap", "owner": null, "group": ${nobody_gid}, "vnet_hdr": true, "multi_queue": false},
  "ttr-tun0": {"kind": "tun", "mode": "tun", "mac": null, "owner": ${nobody_uid}, "addresses": ["203.0.113.9/28"]},
  "ttr-br0": {"kind": "bridge", "stp": true, "forward_delay": 7, "state": "up",
              "alias": "tuntap.qemu:bridge uplink=ttr-veth1",
              "addresses": ["192.0.2.1/24", "198.51.100.7/32", "2001:db8::1/64", "2001:db8::1:0:0:5/80"]},
  "ttr-br1": {"kind": "bridge", "stp": false, "forward_delay": 15, "mtu": 1400, "state": "down", "addresses": [],
              "alias": null},
  "ttr-veth0": {"kind": "veth", "master": null, "addresses": ["10.9.9.1/32", "2001:db8:8::5/64"], "state": "up",
                "dynamic": {}, "autoconf_slaac": ["2001:db8:9::5/64"], "autoconf_kinds": ["slaac", "temporary", "temporary"]},
  "ttr-veth1": {"kind": "veth", "master": "ttr-br0", "master_index": ${bridge_index}, "addresses": [],
                "isolated": false}
}
JSON

for python in "${pythons[@]}"; do
    ip netns exec "${netns}" "${python}" compare_snapshots.py "${work_dir}/expected.json" | tee -a "${work_dir}/results.txt"
done
# Which pyroute2 versions served as the reference (0.7 and 0.9 differ in their decoders).
sed -n 's/^compare_snapshots (\(.*\)): .* links equal.*/rtnl_snapshot: equal with \1/p' "${work_dir}/results.txt"
