#!/usr/bin/env bash
# Concurrent and churning hosts (issue 10) on the real kernel, through the tuntap.qemu.netns
# connection (see ../setup_netns/netns.sh); each playbook in a fresh namespace, once per target
# Python:
#   lock_held.yml       hold_lock.py holds the namespace's host lock: the modules wait, then fail
#                       naming it (check mode too) and change nothing; once it lets go they run
#   two_converges.yml   two inventory hosts that are one namespace converge at the same time,
#                       10 rounds of overlapping taps and one bridge each: every run succeeds
#                       and each bridge holds the union of both hosts' ports
#   churn.yml           128 taps converge while churn_taps.py creates and deletes 20 taps a
#                       second in the same namespace: every run succeeds, and none of its taps
#                       is touched; then snapshot_under_churn.py reads snapshots back to back
#                       under the same churn: all succeed, some after an interrupted dump
# The helpers are started here with a pidfile each and stopped by that PID once
# /proc/PID/cmdline shows it is the helper, also after a failure (netns_cleanup_hook); nothing
# is killed by name. The host lock files of this run's namespaces are removed from
# /run/tuntap-qemu before the namespaces go.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh

CC_HELPERS=()   # "PIDFILE SCRIPT" of every helper started
CC_LOCK_DIR=/run/tuntap-qemu

# cc_helper_pid PIDFILE SCRIPT: the PID in PIDFILE when it is alive and runs SCRIPT.
cc_helper_pid() {
    local pid args
    pid=$(cat -- "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $args == *"$2"* ]] || return 1
    printf '%s\n' "$pid"
}

# cc_start_helper PIDFILE SCRIPT ARGS...: SCRIPT in the namespace NETNS_NAME, in the background;
# returns once it wrote PIDFILE (it does when it is ready).
cc_start_helper() {
    local pidfile=$1 script=$2 tries=0
    shift 2
    CC_HELPERS+=("$pidfile $script")
    ip netns exec "$NETNS_NAME" "$TUNTAP_TARGET_PYTHON" "$script" "$pidfile" "$@" &
    while ! cc_helper_pid "$pidfile" "$script" >/dev/null; do
        tries=$((tries + 1))
        if ((tries > 100)); then
            echo "concurrency: $script did not start" >&2
            return 1
        fi
        sleep 0.1
    done
}

# cc_stop_helper PIDFILE SCRIPT: SIGTERM to the helper, and wait until it has exited.
cc_stop_helper() {
    local pid tries=0
    pid=$(cc_helper_pid "$1" "$2") || return 0
    kill "$pid"
    while [[ -e /proc/$pid ]]; do
        tries=$((tries + 1))
        if ((tries > 100)); then
            kill -9 "$pid"
        fi
        sleep 0.1
    done
}

# cc_remove_lock_file NAMESPACE: the namespace's host lock file, while the namespace still exists
# (so that its inode cannot belong to another namespace yet).
cc_remove_lock_file() {
    local inode
    if [[ -e /run/netns/$1 ]]; then
        inode=$(stat -L -c %i "/run/netns/$1")
        rm -f -- "$CC_LOCK_DIR/lock.net-$inode"
    fi
}

netns_cleanup_hook() {
    local helper name
    for helper in "${CC_HELPERS[@]}"; do
        # shellcheck disable=SC2086 # "PIDFILE SCRIPT", split on purpose
        cc_stop_helper $helper
    done
    for name in "${NETNS_CREATED[@]}"; do
        cc_remove_lock_file "$name"
    done
}

# cc_playbook PLAYBOOK [ANSIBLE-PLAYBOOK ARGS...]: in the namespace NETNS_NAME with its inventory.
cc_playbook() {
    local playbook=$1 start=$SECONDS
    shift
    ansible-playbook -i "$NETNS_WORK_DIR/$NETNS_NAME.ini" "$@" "$playbook"
    echo "concurrency: $playbook passed in $((SECONDS - start))s with $TUNTAP_TARGET_PYTHON"
}

cc_new_namespace() {
    netns_create
    netns_write_inventory "$NETNS_WORK_DIR/$NETNS_NAME.ini"
}

cc_done_with_namespace() {
    cc_remove_lock_file "$NETNS_NAME"
    netns_delete "$NETNS_NAME"
}

netns_init concurrency
netns_target_pythons
for TUNTAP_TARGET_PYTHON in "${NETNS_PYTHONS[@]}"; do
    export TUNTAP_TARGET_PYTHON
    netns_describe_python "$TUNTAP_TARGET_PYTHON"

    # The lock held by another process.
    cc_new_namespace
    holder=$NETNS_WORK_DIR/$NETNS_NAME-holder
    cc_start_helper "$holder.pid" hold_lock.py "$holder.release" ttq-concurrency-holder
    cc_playbook lock_held.yml -e "holder_pid=$(cat "$holder.pid")" -e "holder_release=$holder.release" \
        -e "lock_file=$CC_LOCK_DIR/lock.net-$(stat -L -c %i "/run/netns/$NETNS_NAME")"
    cc_stop_helper "$holder.pid" hold_lock.py
    cc_done_with_namespace

    # Two inventory hosts that are the same namespace, converging at the same time.
    cc_new_namespace
    sed -i -e "s/^hypervisor ansible_host=\(.*\)$/one ansible_host=\1 cc_side=a\ntwo ansible_host=\1 cc_side=b/" \
        "$NETNS_WORK_DIR/$NETNS_NAME.ini"
    cc_playbook two_converges.yml --forks 2
    cc_done_with_namespace

    # A converge of 128 taps while another process creates and deletes 20 taps a second.
    cc_new_namespace
    churn=$NETNS_WORK_DIR/$NETNS_NAME-churn
    cc_start_helper "$churn.pid" churn_taps.py "$churn.json" 20
    cc_playbook churn.yml -e "churn_status=$churn.json"
    ip netns exec "$NETNS_NAME" "$TUNTAP_TARGET_PYTHON" snapshot_under_churn.py 3
    cc_stop_helper "$churn.pid" churn_taps.py
    "$TUNTAP_TARGET_PYTHON" - "$churn.json" <<'PY'
import json
import sys

with open(sys.argv[1]) as handle:
    status = json.load(handle)
print('concurrency: churn_taps.py %s' % status)
if not status['stopped'] or status['violations'] or status['created'] != status['deleted']:
    sys.exit('concurrency: the other process found its taps touched, or did not finish')
PY
    cc_done_with_namespace
done
