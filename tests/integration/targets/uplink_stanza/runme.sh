#!/usr/bin/env bash
# uplink_stanza on files only: every playbook runs once per target Python (the Python running
# ansible, and Debian's /usr/bin/python3 - chosen as for the namespace targets, see
# ../setup_netns/netns.sh, whose functions are used here without creating a namespace) on
# interfaces files in a fresh temporary folder, removed on every way out. The host lock goes to
# that folder too (TUNTAP_QEMU_LOCK_DIR), so nothing outside it is written.
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh

work=$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/uplink_stanza.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
NETNS_ANSIBLE_PYTHON=$(netns_ansible_python)
netns_target_pythons

run=0
playbook=uplink_stanza.yml
for python in "${NETNS_PYTHONS[@]}"; do
    netns_describe_python "$python"
    run=$((run + 1))
    start=$SECONDS
    mkdir -p "$work/$run/interfaces.d" "$work/$run/lock"
    ansible-playbook -i localhost, -c local -e "ansible_python_interpreter=$python" \
        -e "work_dir=$work/$run" "$@" "$playbook"
    echo "uplink_stanza: $playbook passed in $((SECONDS - start))s with $python"
done
