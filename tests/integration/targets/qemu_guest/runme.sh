#!/usr/bin/env bash
# qemu_guest with real QEMU guests (TCG where KVM is not usable) on taps, each playbook in a
# fresh network namespace of its own, through the tuntap.qemu.netns connection
# (see ../setup_netns/netns.sh):
#   guest_lifecycle.yml     once per target Python: start, stop, stale pidfile, kill -9, changed
#                           option, absent; the guest pings its tap
#   guest_refused.yml       once per target Python: every refused request starts no QEMU
#   guest_autostart_fallback.yml  once per target Python: autostart=true without systemd as
#                           init runs the guest daemonized with a warning, writes no unit
#   guest_vde.yml           once per target Python: two guests on a VDE switch (vde_switch,
#                           nics[].vde), both its ports, pinging the host and each other; a
#                           guest without a switch refused
#   guest_unprivileged.yml  once: QEMU as nobody, in a private mount namespace that has a
#                           /dev/net/tun of its own with mode 0666 (private_tun.sh)
# The test guest (a Debian cloud kernel and a busybox initramfs) comes from
# lab/guest/build_guest.py, cached after the first build. Runtime folders live under
# /run/ttq-qemu-guest-<pid> (0755, so that QEMU as nobody reaches its own folder). On exit,
# before the namespaces go, any QEMU still running from a pidfile there is killed by that pid
# once /proc/PID/cmdline shows it is the QEMU of that guest; nothing is ever killed by name.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh

QG_RUNTIME_ROOT=/run/ttq-qemu-guest-$$
QG_MADE_RUNTIME_ROOT=false
QG_SLEEP_PID=
QG_STARTED=$SECONDS

# qg_guest_pid PIDFILE NAME: print the pid in PIDFILE when it is alive and is the QEMU of guest
# NAME (its command line holds -name guest=NAME,...); fail otherwise.
qg_guest_pid() {
    local pid args
    pid=$(cat -- "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $'\n'$args == *$'\n'"guest=$2,"* ]] || return 1
    printf '%s\n' "$pid"
}

# qg_live_guests: "NAME PID" for every guest under the runtime root whose QEMU still runs.
qg_live_guests() {
    local pidfile name pid
    $QG_MADE_RUNTIME_ROOT || return 0
    for pidfile in "$QG_RUNTIME_ROOT"/*/qemu.pid; do
        [[ -f $pidfile ]] || continue
        name=$(basename -- "$(dirname -- "$pidfile")")
        if pid=$(qg_guest_pid "$pidfile" "$name"); then
            printf '%s %s\n' "$name" "$pid"
        fi
    done
}

# Called by netns.sh's exit trap before it deletes the namespaces.
netns_cleanup_hook() {
    local name pid tries argv0 pidfile
    while read -r name pid; do
        echo "qemu_guest: killing leftover QEMU of guest $name, pid $pid" >&2
        kill -9 "$pid"
        tries=0
        while [[ -e /proc/$pid ]] && ((tries < 50)); do
            sleep 0.1
            tries=$((tries + 1))
        done
    done < <(qg_live_guests)
    # The VDE switches of guest_vde.yml (vde-*/vde_switch.pid), by pid, when their command
    # line names this run's runtime root.
    for pidfile in "$QG_RUNTIME_ROOT"/vde-*/vde_switch.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -- "$QG_RUNTIME_ROOT/" >/dev/null; then
            echo "qemu_guest: killing leftover vde_switch, pid $pid" >&2
            kill "$pid" || true
        fi
    done
    if [[ -n $QG_SLEEP_PID ]] && IFS= read -r -d '' argv0 <"/proc/$QG_SLEEP_PID/cmdline" \
        && [[ $argv0 == sleep ]]; then
        kill "$QG_SLEEP_PID"
    fi
    if $QG_MADE_RUNTIME_ROOT; then
        rm -rf -- "$QG_RUNTIME_ROOT"
    fi
}

# qg_collection_root: the collection this target belongs to. ansible-test runs the target from
# a copy that holds only tests/integration, and points ANSIBLE_COLLECTIONS_PATH at the collection.
qg_collection_root() {
    local candidates=(../../../..) paths path
    IFS=: read -r -a paths <<<"${ANSIBLE_COLLECTIONS_PATH:-}"
    for path in "${paths[@]}"; do
        candidates+=("$path/ansible_collections/tuntap/qemu")
    done
    for path in "${candidates[@]}"; do
        if [[ -f $path/lab/guest/build_guest.py ]]; then
            (cd -- "$path" && pwd)
            return 0
        fi
    done
    echo "qemu_guest: lab/guest/build_guest.py not found in ${candidates[*]}" >&2
    return 1
}

# qg_run_with_private_tun PLAYBOOK [ANSIBLE-PLAYBOOK ARGS...]: netns_run_playbook, with
# ansible-playbook (and so every QEMU it starts) in a private mount namespace that has a
# /dev/net/tun of its own, mode 0666.
qg_run_with_private_tun() {
    local playbook=$1 inventory start=$SECONDS tun_dir
    shift
    netns_create
    inventory=$NETNS_WORK_DIR/$NETNS_NAME.ini
    netns_write_inventory "$inventory"
    tun_dir=$NETNS_WORK_DIR/private-tun
    mkdir -p "$tun_dir"
    unshare --mount --propagation private -- bash private_tun.sh "$tun_dir" \
        ansible-playbook -i "$inventory" "$@" "$playbook"
    netns_delete "$NETNS_NAME"
    echo "qemu_guest: $playbook passed in $((SECONDS - start))s with ${TUNTAP_TARGET_PYTHON:-$NETNS_ANSIBLE_PYTHON}"
}

if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "qemu_guest: qemu-system-x86_64 not found (Debian package qemu-system-x86)" >&2
    exit 1
fi

netns_init qemu_guest
tun_before=$(stat -c '%A %u:%g %t:%T' /dev/net/tun)

# The runtime root: traversable by nobody, unlike the 0700 work folder.
mkdir -m 0755 -- "$QG_RUNTIME_ROOT"
QG_MADE_RUNTIME_ROOT=true

collection_root=$(qg_collection_root)
build_started=$SECONDS
"$NETNS_ANSIBLE_PYTHON" "$collection_root/lab/guest/build_guest.py" --json >"$NETNS_WORK_DIR/guest.json"
build_seconds=$((SECONDS - build_started))

# An unrelated live process for the stale pidfile test; killed by its pid on exit.
sleep 3600 >/dev/null 2>&1 &
QG_SLEEP_PID=$!

vars_file=$NETNS_WORK_DIR/qemu_guest_vars.json
"$NETNS_ANSIBLE_PYTHON" - "$NETNS_WORK_DIR/guest.json" "$vars_file" "$QG_RUNTIME_ROOT" "$QG_SLEEP_PID" <<'PY'
import json
import sys

guest_json, vars_file, runtime_root, sleep_pid = sys.argv[1:]
with open(guest_json) as handle:
    guest = json.load(handle)
print('qemu_guest: test guest %s (%s, %.1f s to build): %s'
      % (guest['kernel_release'], 'cached' if guest['cached'] else 'built', guest['build_seconds'],
         guest['kernel']))
with open(vars_file, 'w') as handle:
    json.dump({'qg_kernel': guest['kernel'], 'qg_initrd': guest['initrd'],
               'qg_runtime_root': runtime_root, 'qg_unrelated_pid': int(sleep_pid)}, handle)
PY

netns_run_playbooks guest_lifecycle.yml guest_refused.yml guest_autostart_fallback.yml guest_vde.yml -- -e "@$vars_file" \
    -e "qg_vde_ports=$(cd ../vde_switch && pwd)/vde_ports.py" "$@"
# QEMU as nobody once, with the first target Python (the module runs as root either way).
TUNTAP_TARGET_PYTHON=${NETNS_PYTHONS[0]} qg_run_with_private_tun guest_unprivileged.yml -e "@$vars_file" "$@"

# The playbooks removed their guests themselves; the exit hook is only the safety net.
leftovers=$(qg_live_guests)
if [[ -n $leftovers ]]; then
    echo "qemu_guest: QEMU still running after the playbooks: $leftovers" >&2
    exit 1
fi
if [[ $(stat -c '%A %u:%g %t:%T' /dev/net/tun) != "$tun_before" ]]; then
    echo "qemu_guest: the machine's /dev/net/tun changed: $tun_before -> $(stat -c '%A %u:%g %t:%T' /dev/net/tun)" >&2
    exit 1
fi
echo "qemu_guest: guest build ${build_seconds}s, all playbooks in $((SECONDS - QG_STARTED))s"
