# shellcheck shell=bash
# Network namespaces for the integration targets of tuntap.qemu; sourced by a runme.sh.
#
# A target lists needs/target/setup_netns in its aliases and runs its playbooks with
#
#     source ../setup_netns/netns.sh
#     netns_init tap_device
#     netns_run_playbooks tap_single.yml tap_list.yml -- "$@"
#
# Every playbook gets a fresh namespace of its own, ttq-<target>-<pid>-<n>, and runs once for
# each target Python (netns_target_pythons) through the tuntap.qemu.netns connection, so the
# modules change nothing but that namespace. /etc/netns/<ns>/sysctl.d is created with a guard
# file in it: `ip netns exec` mounts it over /etc/sysctl.d, so files the modules write there
# land in the namespace's folder, and the playbooks refuse to start unless they see the guard.
#
# IPv6 duplicate address detection is off inside the namespaces (see netns_create), so that
# `ip -json` dumps taken a moment apart compare equal when nothing changed.
#
# An EXIT trap deletes the namespaces and their /etc/netns/<ns> folders, also after a failure,
# and then fails the run if the root namespace's links, its forwarding and DAD sysctls, or the
# host's /etc/sysctl.d differ from what netns_init recorded.
#
# Environment:
#   TUNTAP_TARGET_PYTHONS  interpreters that run the modules, separated by spaces (default: the
#                          Python running ansible, and /usr/bin/python3 when it has pyroute2 and
#                          netaddr - Debian's packages - so both library versions are covered)
#   TUNTAP_TARGET_PYTHON   the only interpreter, when TUNTAP_TARGET_PYTHONS is not set
#   ANSIBLE_PIPELINING     default true here (faster); the netns connection supports both

NETNS_LIB_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
NETNS_PREFIX=
NETNS_COUNT=0
NETNS_CREATED=()
NETNS_NAME=
NETNS_WORK_DIR=
NETNS_ROOT_BEFORE=
NETNS_MADE_ETC_NETNS=false
NETNS_ANSIBLE_PYTHON=
NETNS_PYTHONS=()
NETNS_GUARD_FILE=.ttq-netns-guard
NETNS_SYSTEM_PYTHON=/usr/bin/python3

# netns_init TARGET: record the root namespace's state, arm the cleanup trap.
netns_init() {
    NETNS_PREFIX="ttq-$1-$$"
    if ((EUID != 0)); then
        echo "setup_netns: network namespaces need root" >&2
        exit 1
    fi
    if [[ ! -d /etc/sysctl.d ]]; then
        # Without it `ip netns exec` mounts nothing over /etc/sysctl.d and a module writing
        # /etc/sysctl.d/... would create the host's folder.
        echo "setup_netns: /etc/sysctl.d does not exist on this host; refusing to run" >&2
        exit 1
    fi
    NETNS_WORK_DIR=$(mktemp -d "${OUTPUT_DIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")
    trap netns_cleanup EXIT
    NETNS_ROOT_BEFORE=$NETNS_WORK_DIR/root-namespace-before.txt
    netns_root_state >"$NETNS_ROOT_BEFORE"
    NETNS_ANSIBLE_PYTHON=$(netns_ansible_python)
    export ANSIBLE_FILTER_PLUGINS="$NETNS_LIB_DIR/filter_plugins${ANSIBLE_FILTER_PLUGINS:+:$ANSIBLE_FILTER_PLUGINS}"
    export ANSIBLE_PIPELINING=${ANSIBLE_PIPELINING:-true}
}

# What the tests must never change: the root namespace's links and the sysctls the namespaces
# set, and the host's /etc/sysctl.d.
netns_root_state() {
    local key
    ip -o link show | sed -e 's/^[0-9]*: \([^:@]*\)[:@].*/link \1/' | sort
    for key in net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv6/conf/default/forwarding \
        net/ipv6/conf/all/accept_dad net/ipv6/conf/default/accept_dad; do
        if [[ -r /proc/sys/$key ]]; then
            printf 'sysctl %s = %s\n' "$key" "$(<"/proc/sys/$key")"
        fi
    done
    ls -ld --time-style=full-iso /etc/sysctl.d
    ls -lA --time-style=full-iso /etc/sysctl.d
    find /etc/sysctl.d -maxdepth 1 -type f -exec sha256sum {} + | sort
}

# The Python that runs ansible-playbook (ansible-test exports it; else ask ansible).
netns_ansible_python() {
    local python
    if [[ -n ${ANSIBLE_TEST_PYTHON_INTERPRETER:-} ]]; then
        printf '%s\n' "$ANSIBLE_TEST_PYTHON_INTERPRETER"
        return 0
    fi
    python=$(ansible-playbook --version | sed -n 's/^ *python version = .*(\(\/[^)]*\))$/\1/p')
    printf '%s\n' "${python:-$(command -v python3)}"
}

netns_python_has_libraries() {
    "$1" -c 'import netaddr, pyroute2' 2>/dev/null
}

# Fill NETNS_PYTHONS with the interpreters that run the modules.
netns_target_pythons() {
    NETNS_PYTHONS=()
    if [[ -n ${TUNTAP_TARGET_PYTHONS:-} ]]; then
        read -r -a NETNS_PYTHONS <<<"$TUNTAP_TARGET_PYTHONS"
        return 0
    fi
    if [[ -n ${TUNTAP_TARGET_PYTHON:-} ]]; then
        NETNS_PYTHONS=("$TUNTAP_TARGET_PYTHON")
        return 0
    fi
    NETNS_PYTHONS=("$NETNS_ANSIBLE_PYTHON")
    if [[ $NETNS_SYSTEM_PYTHON != "$NETNS_ANSIBLE_PYTHON" ]]; then
        if [[ -x $NETNS_SYSTEM_PYTHON ]] && netns_python_has_libraries "$NETNS_SYSTEM_PYTHON"; then
            NETNS_PYTHONS+=("$NETNS_SYSTEM_PYTHON")
        else
            echo "setup_netns: $NETNS_SYSTEM_PYTHON lacks pyroute2 or netaddr; testing with $NETNS_ANSIBLE_PYTHON only" >&2
        fi
    fi
}

# One line about an interpreter and its library versions, for the log.
netns_describe_python() {
    "$1" - "$1" <<'PY' || true
import platform
import sys

def version(name):
    try:
        from importlib.metadata import version as dist_version
        return dist_version(name)
    except Exception:
        try:
            return getattr(__import__(name), '__version__', 'unknown')
        except ImportError:
            return 'missing'

print('setup_netns: target python %s (Python %s): pyroute2 %s, netaddr %s'
      % (sys.argv[1], platform.python_version(), version('pyroute2'), version('netaddr')))
PY
}

# netns_create: a new namespace named in NETNS_NAME, with its own /etc/netns/<ns>/sysctl.d.
netns_create() {
    NETNS_COUNT=$((NETNS_COUNT + 1))
    NETNS_NAME="$NETNS_PREFIX-$NETNS_COUNT"
    if [[ -e /run/netns/$NETNS_NAME || -e /etc/netns/$NETNS_NAME ]]; then
        echo "setup_netns: $NETNS_NAME exists already (a stale run?); not touching it" >&2
        return 1
    fi
    ip netns add "$NETNS_NAME"
    NETNS_CREATED+=("$NETNS_NAME")
    # No IPv6 duplicate address detection in the namespace: a tap that a module attaches to
    # (to create it or change its owner) has its carrier for a moment, and DAD would then
    # flip address flags for a second or two after the module returned.
    ip netns exec "$NETNS_NAME" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    if [[ ! -d /etc/netns ]]; then
        mkdir -p /etc/netns
        NETNS_MADE_ETC_NETNS=true
    fi
    mkdir -p "/etc/netns/$NETNS_NAME/sysctl.d"
    printf '%s\n' "$NETNS_NAME" >"/etc/netns/$NETNS_NAME/sysctl.d/$NETNS_GUARD_FILE"
}

netns_delete() {
    case $1 in
        "$NETNS_PREFIX"-*) ;;
        *) echo "setup_netns: not deleting $1, which this run did not create" >&2; return 1 ;;
    esac
    if [[ -e /run/netns/$1 ]]; then
        ip netns delete "$1"
    fi
    rm -rf -- "/etc/netns/$1"
}

# netns_write_inventory FILE: one host, the namespace NETNS_NAME, and the test's variables.
netns_write_inventory() {
    local group_name gid
    if getent group nogroup >/dev/null; then group_name=nogroup; else group_name=nobody; fi
    gid=$(getent group "$group_name" | cut -d: -f3)
    cat >"$1" <<INI
[netns]
hypervisor ansible_host=$NETNS_NAME

[netns:vars]
ansible_connection=tuntap.qemu.netns
ansible_python_interpreter=${TUNTAP_TARGET_PYTHON:-$NETNS_ANSIBLE_PYTHON}
netns_name=$NETNS_NAME
netns_etc=/etc/netns/$NETNS_NAME
netns_tasks=$NETNS_LIB_DIR/tasks
netns_guard_file=$NETNS_GUARD_FILE
test_user=nobody
test_user_uid=$(id -u nobody)
test_group=$group_name
test_group_gid=$gid
INI
}

# netns_run_playbook PLAYBOOK [ANSIBLE-PLAYBOOK ARGS...]: in a fresh namespace, then delete it.
netns_run_playbook() {
    local playbook=$1 inventory start=$SECONDS
    shift
    netns_create
    inventory=$NETNS_WORK_DIR/$NETNS_NAME.ini
    netns_write_inventory "$inventory"
    ansible-playbook -i "$inventory" "$@" "$playbook"
    netns_delete "$NETNS_NAME"
    echo "setup_netns: $playbook passed in $((SECONDS - start))s with ${TUNTAP_TARGET_PYTHON:-$NETNS_ANSIBLE_PYTHON}"
}

# netns_run_playbooks PLAYBOOK... [-- ANSIBLE-PLAYBOOK ARGS...]: every playbook, every target Python.
netns_run_playbooks() {
    local playbooks=() args=() python playbook
    while (($#)); do
        if [[ $1 == -- ]]; then
            shift
            args=("$@")
            break
        fi
        playbooks+=("$1")
        shift
    done
    netns_target_pythons
    for python in "${NETNS_PYTHONS[@]}"; do
        netns_describe_python "$python"
        for playbook in "${playbooks[@]}"; do
            TUNTAP_TARGET_PYTHON=$python netns_run_playbook "$playbook" "${args[@]}"
        done
    done
}

netns_cleanup() {
    local rc=$? name
    set +e
    # A target may define netns_cleanup_hook to end what it started (e.g. processes that hold
    # links in its namespaces); it runs before the namespaces are deleted.
    if declare -F netns_cleanup_hook >/dev/null; then
        netns_cleanup_hook
    fi
    for name in "${NETNS_CREATED[@]}"; do
        netns_delete "$name"
    done
    if $NETNS_MADE_ETC_NETNS; then
        rmdir /etc/netns 2>/dev/null
    fi
    if [[ -f $NETNS_ROOT_BEFORE ]] && ! netns_root_state | diff -u "$NETNS_ROOT_BEFORE" - >&2; then
        echo "setup_netns: the root namespace or /etc/sysctl.d changed during the test (diff above)" >&2
        rc=1
    fi
    rm -rf -- "$NETNS_WORK_DIR"
    exit "$rc"
}
