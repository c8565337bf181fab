#!/usr/bin/env bash
# port_forward on the real kernel: every playbook runs in a fresh NAT lab of its own, once
# per target Python, through the tuntap.qemu.netns connection (see ../setup_nat_lab/nat_lab.sh).
set -eux -o pipefail

source ../setup_nat_lab/nat_lab.sh
nat_lab_init port_forward
nat_lab_run_playbooks port_forward_nft.yml port_forward_iptables.yml port_forward_bad_input.yml \
    port_forward_list.yml port_forward_paths.yml -- "$@"
