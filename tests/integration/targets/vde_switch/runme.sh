#!/usr/bin/env bash
# vde_switch on the real kernel: for each target Python, vde_switch.yml in a fresh network
# namespace (tap vde0 made by tap_device with 192.168.20.1/24, the switch as a process with its
# pidfile, socket and management socket in this run's folder). Any vde_switch still running
# from a pidfile of this run's folder is ended by that pid (its command line names the folder)
# before the namespaces go; nothing is ever killed by name.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh

if ! command -v vde_switch >/dev/null; then
    echo "vde_switch: vde_switch not found (Debian package vde2)" >&2
    exit 1
fi

netns_init vde_switch
VDE_WORK=$(mktemp -d /tmp/ttq-vde-switch.XXXXXX)
chmod 0755 "$VDE_WORK"

netns_cleanup_hook() {
    local pidfile pid
    for pidfile in "$VDE_WORK"/*/vde_switch.pid; do
        [[ -f $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -- "$VDE_WORK" >/dev/null; then
            echo "vde_switch: killing leftover vde_switch, pid $pid" >&2
            kill "$pid" || true
        fi
    done
    rm -rf -- "$VDE_WORK"
}

netns_run_playbooks vde_switch.yml -- -e "vde_work=$VDE_WORK" -e "vde_ports=$PWD/vde_ports.py" "$@"
