#!/usr/bin/env bash
# Ownership and prune (issue 10) on the real kernel: tap_device prune=true and bridge_port
# prune=true remove only links that carry the collection's mark, leave an admin's tap7 and
# bridge alone, warn about a marked tap a process holds open, and leaving bridged_lan gives
# the uplink its addresses and routes back while a LAN peer keeps pinging.
#
# Every playbook runs in a fresh namespace of its own (the hypervisor, through the
# tuntap.qemu.netns connection) beside a fresh peer namespace (the LAN), once per target
# Python (see ../setup_netns/netns.sh). Processes the playbooks start (a tap holder, a ping)
# write pidfiles into LINK_PRUNE_RUN; the cleanup hook ends those still running by PID.
# LINK_PRUNE_PLAYBOOKS (space-separated) runs only some of the playbooks.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init link_prune

LINK_PRUNE_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
LINK_PRUNE_RUN=$NETNS_WORK_DIR/run
mkdir -p "$LINK_PRUNE_RUN"

# Ends the processes this run started, by the PIDs in their pidfiles, and only when the
# PID still runs one of this target's commands.
netns_cleanup_hook() {
    local pidfile pid
    for pidfile in "$LINK_PRUNE_RUN"/*.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -e held_tap.py -e ping; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f -- "$pidfile"
    done
}

# link_prune_run PLAYBOOK [ANSIBLE-PLAYBOOK ARGS...]: the peer namespace, then the
# hypervisor's with its inventory; both deleted after the playbook (and by the EXIT trap).
link_prune_run() {
    local playbook=$1 peer inventory start=$SECONDS
    shift
    netns_create
    peer=$NETNS_NAME
    netns_create
    inventory=$NETNS_WORK_DIR/$NETNS_NAME.ini
    netns_write_inventory "$inventory"
    ansible-playbook -i "$inventory" -e "link_prune_peer=$peer" -e "link_prune_run=$LINK_PRUNE_RUN" \
        -e "link_prune_dir=$LINK_PRUNE_DIR" "$@" "$playbook"
    netns_delete "$NETNS_NAME"
    netns_delete "$peer"
    echo "link_prune: $playbook passed in $((SECONDS - start))s with ${TUNTAP_TARGET_PYTHON:-$NETNS_ANSIBLE_PYTHON}"
}

netns_target_pythons
for python in "${NETNS_PYTHONS[@]}"; do
    netns_describe_python "$python"
    for playbook in ${LINK_PRUNE_PLAYBOOKS:-prune_taps.yml prune_bridges.yml leave_bridged_lan.yml}; do
        TUNTAP_TARGET_PYTHON=$python link_prune_run "$playbook" "$@"
    done
done
