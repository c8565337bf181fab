#!/usr/bin/env bash
# tap_device on the real kernel: every playbook runs in a fresh network namespace of its own,
# once per target Python, through the tuntap.qemu.netns connection (see ../setup_netns/netns.sh).
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init tap_device
netns_run_playbooks tap_single.yml tap_list.yml tap_bad_input.yml tap_fleet.yml -- "$@"
