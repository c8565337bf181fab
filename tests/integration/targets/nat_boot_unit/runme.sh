#!/usr/bin/env bash
# The boot unit of the nftables backend (tuntap-qemu-nft.service) on the real kernel, in a
# fresh NAT lab per playbook and target Python (see ../setup_nat_lab/nat_lab.sh): no unit
# without systemd, the unit and its enable link with boot_unit=systemd in the lab's own
# folder, and the boot paths (our unit alone, nftables.service then our unit, a restart of
# nftables.service) replayed with nft inside the lab's hypervisor namespace.
set -eux -o pipefail

source ../setup_nat_lab/nat_lab.sh
nat_lab_init nat_boot_unit
nat_lab_run_playbooks nat_boot_unit.yml -- "$@"
