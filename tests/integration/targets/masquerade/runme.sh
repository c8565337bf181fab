#!/usr/bin/env bash
# masquerade on the real kernel: every playbook runs in a fresh NAT lab of its own (a
# hypervisor, two guests on its bridge, a LAN peer without a route back to the guests and a
# routed network), once per target Python, through the tuntap.qemu.netns connection
# (see ../setup_nat_lab/nat_lab.sh).
set -eux -o pipefail

source ../setup_nat_lab/nat_lab.sh
nat_lab_init masquerade
nat_lab_run_playbooks masquerade_nft.yml masquerade_coexist.yml masquerade_iptables.yml \
    masquerade_bad_input.yml masquerade_list.yml masquerade_backend_switch.yml -- "$@"
