#!/usr/bin/env bash
# Integration test of the tuntap.qemu.netns connection plugin.
#
# Creates its own network namespace (ttq-conn-<pid>) with a bridge and a veth pair
# inside it, runs netns_connection.yml against it with pipelining on and off, and
# deletes everything again on exit, also on failure. Nothing is changed in the root
# network namespace: links are created with `ip -n NS`, never moved in from the root.
#
# TUNTAP_TARGET_PYTHON selects the module interpreter inside the namespace
# (default: the python running ansible). ansible-test does not pass the caller's
# environment to targets: there, choose it with `ansible-test integration
# --python-interpreter PATH` (ansible then runs with it too), or run this script
# directly (with the collection on ANSIBLE_COLLECTIONS_PATH).
# Extra arguments go to ansible-playbook.
set -eux -o pipefail

netns="ttq-conn-$$"
missing_netns="ttq-conn-$$-missing"
netns_etc="/etc/netns/${netns}"
target_python="${TUNTAP_TARGET_PYTHON:-${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}}"
work_dir="$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/connection_netns.XXXXXX")"

cleanup() {
    ip netns delete "${netns}" 2>/dev/null || true
    rm -rf -- "${netns_etc}" "${work_dir}"
}
trap cleanup EXIT

if [ -e "/run/netns/${missing_netns}" ]; then
    echo "namespace ${missing_netns} unexpectedly exists" >&2
    exit 1
fi

ip netns add "${netns}"
ip -n "${netns}" link add ttqc-br0 type bridge
ip -n "${netns}" link add ttqc-v0 type veth peer name ttqc-v1
ip -n "${netns}" link set ttqc-v1 master ttqc-br0

# Per-namespace /etc/network, bind-mounted by `ip netns exec` (only when the
# controller has an /etc/network to mount over).
check_etc_bind=false
if [ -d /etc/network ]; then
    mkdir -p "${netns_etc}/network/interfaces.d"
    check_etc_bind=true
fi

# Whether the module interpreter can run as nobody (pyenv under /root cannot).
python_usable_by_nobody=false
if su -s /bin/sh nobody -c "'${target_python}' -c pass" >/dev/null 2>&1; then
    python_usable_by_nobody=true
fi

# Read-only snapshot of the root namespace's links, which must stay invisible.
"${target_python}" - "${work_dir}/vars.json" "${netns}" "${missing_netns}" "${netns_etc}" "${check_etc_bind}" "${work_dir}" "${python_usable_by_nobody}" <<'PY'
import json
import os
import sys

path, netns, missing_netns, netns_etc, check_etc_bind, work_dir, python_usable_by_nobody = sys.argv[1:]
with open(path, 'w') as vars_file:
    json.dump({
        'netns_name': netns,
        'missing_netns_name': missing_netns,
        'netns_etc': netns_etc,
        'check_etc_bind': check_etc_bind == 'true',
        'python_usable_by_nobody': python_usable_by_nobody == 'true',
        'fetch_dir': os.path.join(work_dir, 'fetched'),
        'netns_links': ['lo', 'ttqc-br0', 'ttqc-v0', 'ttqc-v1'],
        'root_links': sorted(name for name in os.listdir('/sys/class/net') if name != 'lo'),
    }, vars_file)
PY

cat > "${work_dir}/inventory.ini" <<INI
[namespaced]
ttq_hv ansible_host=${netns}

[unreachable]
ttq_missing ansible_host=${missing_netns} expected_message='network namespace "${missing_netns}" does not exist'
ttq_name_wins ansible_host=${netns} ansible_netns_name=${missing_netns} expected_message='network namespace "${missing_netns}" does not exist'
ttq_bad_name ansible_netns_name=../${netns} expected_message='is not a network namespace name'

[all:vars]
ansible_connection=tuntap.qemu.netns
ansible_python_interpreter=${target_python}
INI

for pipelining in true false; do
    log="${work_dir}/pipelining-${pipelining}.log"
    ANSIBLE_PIPELINING="${pipelining}" ANSIBLE_BECOME_ALLOW_SAME_USER=true ansible-playbook -vvv \
        -i "${work_dir}/inventory.ini" -e "@${work_dir}/vars.json" \
        "$@" netns_connection.yml 2>&1 | tee "${log}"
    # Fact gathering (no become) really went through stdin or through a module file.
    # (su, used by the become tasks, never pipelines, so those tasks do not count.)
    if grep -q "^<${netns}> PUT .* TO .*/AnsiballZ_setup\.py\$" "${log}"; then module_file=true; else module_file=false; fi
    if [ "${pipelining}" = "${module_file}" ]; then
        echo "pipelining=${pipelining} but the setup module was put as a file: ${module_file}" >&2
        exit 1
    fi
    grep -q "EXEC .*ip netns exec ${netns} " "${log}"
done
