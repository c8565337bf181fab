#!/usr/bin/env bash
# ip_forward on the real kernel: the playbook runs in a fresh network namespace of its own,
# once per target Python, through the tuntap.qemu.netns connection (see ../setup_netns/netns.sh).
# The persistent file lands in /etc/netns/<ns>/sysctl.d; the trap checks the host's /etc/sysctl.d.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init ip_forward
netns_run_playbooks ip_forward.yml -- "$@"
