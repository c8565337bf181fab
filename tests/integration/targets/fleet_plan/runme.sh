#!/usr/bin/env bash
# fleet_plan through ansible-playbook: a valid fleet of four fake hypervisors (one per
# topology) and a broken one, planned for real and in check mode. The hosts are inventory
# entries only (connection local, never contacted): nothing on this machine changes.
set -eux -o pipefail

ansible-playbook -i inventory.yml fleet_plan.yml "$@"
ansible-playbook -i inventory.yml fleet_plan.yml --check --diff "$@"
