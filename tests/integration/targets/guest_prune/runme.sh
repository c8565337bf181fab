#!/usr/bin/env bash
# qemu_guest prune=true on real QEMU guests (guest_prune.yml, once per target Python, each in a
# fresh network namespace of its own through the tuntap.qemu.netns connection, see
# ../setup_netns/netns.sh): three guests start, a prune keeps one, four ways.
# Beside them, under the same runtime root, two things that are not ours and must survive
# every prune of both runs, checked here afterwards:
#   foreign-nomark/   a pidfile with the pid of a `sleep`, no argv.json (not our mark)
#   foreign-mimic/    our mark (argv.json) and a pidfile whose process only looks like our QEMU:
#                     its command line has -name guest=foreign-mimic,... and this pidfile, but it
#                     is a Python sleep, not the recorded command line
#   foreign-otherhost/ a "guest of ours" in every respect (argv.json is its command line), but
#                     its process runs in the root network namespace, not in the play's: another
#                     host's guest in the lab, where hosts are namespaces of one machine
# The test guest (a Debian cloud kernel and a busybox initramfs) comes from
# lab/guest/build_guest.py, cached after the first build. On exit, before the namespaces go,
# any QEMU still running from a pidfile under the root is killed by that pid once
# /proc/PID/cmdline shows it is the QEMU of that guest; the two foreign processes are ended by
# their pids; nothing is ever killed by name.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh

GP_ROOT=/run/ttq-guest-prune-$$
GP_MADE_ROOT=false
GP_SLEEP_PID=
GP_MIMIC_PID=
GP_OTHER_PID=
GP_STARTED=$SECONDS

# gp_guest_pid PIDFILE NAME: the pid in PIDFILE when it is alive and is a QEMU of guest NAME
# (its command line holds -name guest=NAME,...) and not the mimic; fail otherwise.
gp_guest_pid() {
    local pid args
    pid=$(cat -- "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && $pid != "$GP_MIMIC_PID" && $pid != "$GP_OTHER_PID" ]] || return 1
    args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $'\n'$args == *$'\n'"guest=$2,"* ]] || return 1
    printf '%s\n' "$pid"
}

# gp_live_guests: "NAME PID" for every guest under the root whose QEMU still runs.
gp_live_guests() {
    local pidfile name pid
    $GP_MADE_ROOT || return 0
    for pidfile in "$GP_ROOT"/*/qemu.pid; do
        [[ -f $pidfile ]] || continue
        name=$(basename -- "$(dirname -- "$pidfile")")
        if pid=$(gp_guest_pid "$pidfile" "$name"); then
            printf '%s %s\n' "$name" "$pid"
        fi
    done
}

# gp_end PID ARGV0-SUFFIX: end a process this script started, by pid, once its argv[0] says so.
gp_end() {
    local argv0
    [[ -n $1 ]] || return 0
    if IFS= read -r -d '' argv0 <"/proc/$1/cmdline" 2>/dev/null && [[ $argv0 == *"$2" ]]; then
        kill "$1"
    fi
}

# Called by netns.sh's exit trap before it deletes the namespaces.
netns_cleanup_hook() {
    local name pid tries
    while read -r name pid; do
        echo "guest_prune: killing leftover QEMU of guest $name, pid $pid" >&2
        kill -9 "$pid"
        tries=0
        while [[ -e /proc/$pid ]] && ((tries < 50)); do
            sleep 0.1
            tries=$((tries + 1))
        done
    done < <(gp_live_guests)
    gp_end "$GP_SLEEP_PID" sleep
    gp_end "$GP_MIMIC_PID" "$(basename -- "$NETNS_ANSIBLE_PYTHON")"
    gp_end "$GP_OTHER_PID" "$(basename -- "$NETNS_ANSIBLE_PYTHON")"
    if $GP_MADE_ROOT; then
        rm -rf -- "$GP_ROOT"
    fi
}

# gp_collection_root: the collection this target belongs to. ansible-test runs the target from
# a copy that holds only tests/integration, and points ANSIBLE_COLLECTIONS_PATH at the collection.
gp_collection_root() {
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
    echo "guest_prune: lab/guest/build_guest.py not found in ${candidates[*]}" >&2
    return 1
}

# gp_foreign_state: what must not change - the foreign folders' files and their processes.
gp_foreign_state() {
    local pid
    (cd -- "$GP_ROOT" && find foreign-nomark foreign-mimic foreign-otherhost -type f -print0 | sort -z | xargs -0 sha256sum)
    for pid in "$GP_SLEEP_PID" "$GP_MIMIC_PID" "$GP_OTHER_PID"; do
        tr '\0' ' ' <"/proc/$pid/cmdline"
        echo
    done
}

if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "guest_prune: qemu-system-x86_64 not found (Debian package qemu-system-x86)" >&2
    exit 1
fi

netns_init guest_prune
mkdir -m 0755 -- "$GP_ROOT"
GP_MADE_ROOT=true

collection_root=$(gp_collection_root)
"$NETNS_ANSIBLE_PYTHON" "$collection_root/lab/guest/build_guest.py" --json >"$NETNS_WORK_DIR/guest.json"

# Not ours: a folder without argv.json whose pidfile names a live sleep.
mkdir -- "$GP_ROOT/foreign-nomark"
sleep 3600 >/dev/null 2>&1 &
GP_SLEEP_PID=$!
echo "$GP_SLEEP_PID" >"$GP_ROOT/foreign-nomark/qemu.pid"
echo 'not ours' >"$GP_ROOT/foreign-nomark/serial.log"

# Our mark, but a process that only looks like our QEMU.
mkdir -- "$GP_ROOT/foreign-mimic"
mimic_pidfile=$GP_ROOT/foreign-mimic/qemu.pid
"$NETNS_ANSIBLE_PYTHON" -c 'import time; time.sleep(3600)' \
    -name guest=foreign-mimic,process=qemu-foreign-mimic -pidfile "$mimic_pidfile" >/dev/null 2>&1 &
GP_MIMIC_PID=$!
echo "$GP_MIMIC_PID" >"$mimic_pidfile"

# Ours in every respect but its network namespace (this script's, not the play's).
mkdir -- "$GP_ROOT/foreign-otherhost"
other_pidfile=$GP_ROOT/foreign-otherhost/qemu.pid
"$NETNS_ANSIBLE_PYTHON" -c 'import time; time.sleep(3600)' \
    -name guest=foreign-otherhost,process=qemu-foreign-otherhost -pidfile "$other_pidfile" >/dev/null 2>&1 &
GP_OTHER_PID=$!
echo "$GP_OTHER_PID" >"$other_pidfile"

vars_file=$NETNS_WORK_DIR/guest_prune_vars.json
"$NETNS_ANSIBLE_PYTHON" - "$NETNS_WORK_DIR/guest.json" "$vars_file" "$GP_ROOT" "$GP_SLEEP_PID" "$GP_MIMIC_PID" \
    "$GP_OTHER_PID" <<'PY'
import json
import sys
import time

guest_json, vars_file, root, sleep_pid, mimic_pid, other_pid = sys.argv[1:]
with open(guest_json) as handle:
    guest = json.load(handle)
pidfile = root + '/foreign-mimic/qemu.pid'
with open(root + '/foreign-mimic/argv.json', 'w') as handle:
    json.dump(['/usr/bin/qemu-system-x86_64', '-name', 'guest=foreign-mimic,process=qemu-foreign-mimic',
               '-daemonize', '-pidfile', pidfile, '-qmp', 'unix:%s/foreign-mimic/qmp.sock,server=on,wait=off' % root],
              handle)
# The other host's guest records its own command line, once its exec is done.
deadline = time.monotonic() + 10
while True:
    with open('/proc/%s/cmdline' % other_pid, 'rb') as handle:
        other_argv = [arg.decode() for arg in handle.read().split(b'\0')[:-1]]
    if '-pidfile' in other_argv or time.monotonic() > deadline:
        break
    time.sleep(0.05)
with open(root + '/foreign-otherhost/argv.json', 'w') as handle:
    json.dump(other_argv, handle)
with open(vars_file, 'w') as handle:
    json.dump({'gp_kernel': guest['kernel'], 'gp_initrd': guest['initrd'], 'gp_root': root,
               'gp_sleep_pid': int(sleep_pid), 'gp_mimic_pid': int(mimic_pid),
               'gp_other_pid': int(other_pid)}, handle)
PY
foreign_before=$(gp_foreign_state)

netns_run_playbooks guest_prune.yml -- -e "@$vars_file" "$@"

# The playbooks removed their guests themselves; the exit hook is only the safety net.
leftovers=$(gp_live_guests)
if [[ -n $leftovers ]]; then
    echo "guest_prune: QEMU still running after the playbooks: $leftovers" >&2
    exit 1
fi
foreign_after=$(gp_foreign_state)
if [[ $foreign_after != "$foreign_before" ]]; then
    echo "guest_prune: what is not ours changed:" >&2
    diff <(echo "$foreign_before") <(echo "$foreign_after") >&2 || true
    exit 1
fi
if [[ $(cd -- "$GP_ROOT" && echo *) != 'foreign-mimic foreign-nomark foreign-otherhost' ]]; then
    echo "guest_prune: left under $GP_ROOT: $(cd -- "$GP_ROOT" && echo *)" >&2
    exit 1
fi
echo "guest_prune: passed in $((SECONDS - GP_STARTED))s"
