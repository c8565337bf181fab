#!/usr/bin/env bash
# bridge_port on the real kernel: every playbook runs in a fresh network namespace of its own,
# once per target Python, through the tuntap.qemu.netns connection (see ../setup_netns/netns.sh).
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init bridge_port
netns_run_playbooks bridge.yml bridge_bad_input.yml -- "$@"
