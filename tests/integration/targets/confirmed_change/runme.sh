#!/usr/bin/env bash
# confirmed_change on the real kernel (issue 11): a rollback armed before the bridged_lan
# takeover or give-back restores the uplink, the bridge, the routes, a DHCP client and files
# unless confirmed. Every playbook runs in a fresh network namespace of its own, with a peer
# namespace (<ns>-peer) behind the uplink, once per target Python (see ../setup_netns/netns.sh).
# The rollback here is the detached sleeper (this machine's PID 1 is not systemd, and a systemd
# unit would not run in the test's namespace).
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init confirmed_change

# After a failure: end the sleepers and stand-in DHCP clients this run started (by their
# pidfiles, each checked against its cmdline), delete the peer namespaces and the test folders.
netns_cleanup_hook() {
    local dir pidfile pid
    for dir in /run/tuntap-qemu/test-"$NETNS_PREFIX"-*; do
        [[ -d $dir ]] || continue
        for pidfile in "$dir"/rollback/*/helper.pid "$dir"/dhclient.*.pid; do
            [[ -f $pidfile ]] || continue
            pid=$(<"$pidfile")
            if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir"; then
                kill "$pid" || true
            fi
        done
        rm -rf -- "$dir"
    done
    for dir in /run/netns/"$NETNS_PREFIX"-*-peer; do
        [[ -e $dir ]] && ip netns delete "$(basename -- "$dir")"
    done
    return 0
}

netns_run_playbooks rollback.yml confirm.yml release.yml late.yml -- "$@"
