#!/usr/bin/env bash
# The test command of the tuntap.qemu collection.
#
#   tests/run.sh [STAGE...]     STAGE: sanity lint units integration build e2e molecule realhost
#                               (default: all, in that order; e2e and molecule once they exist)
#   tests/run.sh prepare        only install what the tests and the lab need (lab/run.sh uses it)
#
# Works from a Debian 12 root shell that has only git and python3: it installs the Debian
# packages the tests need, keeps a virtual environment with ansible-core, lays the
# collection out as ansible_collections/<namespace>/<name> in a temporary folder and runs
# ansible-test there. Each stage prints a header and its wall time; the first failing stage
# stops the run. The last line counts the stages: "N passed, M failed".
#
# Environment:
#   TUNTAP_VENV        virtual environment to create or reuse (default /var/cache/tuntap-qemu/venv)
#   TUNTAP_LINT_VENV   the lint stage's own environment (default /var/cache/tuntap-qemu/lint-venv)
#   TUNTAP_PYTHON      Python that creates it (default Debian's /usr/bin/python3, else python3 on PATH)
#   TUNTAP_SKIP_APT=1  do not check or install Debian packages
#   TUNTAP_KEEP_WORK=1 keep the temporary collection folder after the run
#   TUNTAP_INTEGRATION_TARGETS  space-separated targets for the integration stage (default all)
#
# Nothing here touches the network configuration of the root namespace; stages that need
# a network build their own namespaces.
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TUNTAP_VENV:-/var/cache/tuntap-qemu/venv}
ALL_STAGES=(sanity lint units integration build e2e molecule realhost)
# openssh-client: ansible-test integration refuses to start without ssh-keygen; the
# realhost stage reaches its VMs with ssh. debootstrap, e2fsprogs (mkfs.ext4 -d) and
# qemu-utils (qemu-img) build and overlay the realhost stage's Debian image.
# isc-dhcp-client: dhclient for bridge_port's DHCP uplink target (bridge_dhcp.yml), with dnsmasq-base.
SYSTEM_PACKAGES=(
    python3-venv python3-pip iproute2 nftables iptables ifupdown bridge-utils qemu-system-x86
    busybox-static python3-pyroute2 python3-netaddr python3-nftables procps kmod ca-certificates
    openssh-client iputils-ping shellcheck debootstrap dnsmasq-base e2fsprogs qemu-utils
    isc-dhcp-client vde2
)
# ansible-core 2.16 is the oldest release meta/runtime.yml admits; 2.20 drops Python 3.11,
# the Python of Debian 12.
# pyroute2 and netaddr from PyPI at their current major versions: the venv sees Debian's
# python3-pyroute2 0.7.2 and python3-netaddr 0.8.0 through --system-site-packages, and pip
# would take those as good enough. The integration targets run the modules with both the
# venv's Python (PyPI's libraries) and Debian's /usr/bin/python3 (Debian's), so both are tested.
VENV_PACKAGES=('ansible-core>=2.16,<2.20' 'pyroute2>=0.9' 'netaddr>=1.0' pytest)
# The lint stage's tools, in a venv of their own so that their dependencies never change what
# the tests run with. ansible-lint 26.x (its rules and the production profile are what
# .ansible-lint was written against) with the newest ansible-core that Debian 12's Python
# runs; antsibull-changelog is still 0.x, so its "major" pin is <1.
LINT_VENV=${TUNTAP_LINT_VENV:-/var/cache/tuntap-qemu/lint-venv}
LINT_VENV_PACKAGES=('ansible-lint>=26,<27' 'ansible-core>=2.19,<2.20' 'antsibull-changelog>=0.36,<1')

passed=0
failed=0
skipped=0
WORK=
COLLECTION=

say() { printf '%s\n' "$*"; }
header() { say ''; say "=== $* ==="; }

summary() {
    local line="$passed passed, $failed failed"
    if ((skipped)); then
        line+=", $skipped skipped"
    fi
    say ''
    say "$line"
}

cleanup() {
    if [[ -n $COLLECTION && -d $COLLECTION/tests/output ]]; then
        # Keep ansible-test's results where a developer looks for them (ignored by git).
        rm -rf "$REPO_ROOT/tests/output"
        cp -a "$COLLECTION/tests/output" "$REPO_ROOT/tests/output" || true
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${TUNTAP_KEEP_WORK:-} != 1 ]]; then
            rm -rf "$WORK"
        fi
    fi
}
trap cleanup EXIT

# run_step NAME COUNTED COMMAND...: run COMMAND with errexit in a subshell and time it.
# Preparation steps are not counted unless they fail, which stops the run like a failed stage.
run_step() {
    local name=$1 counted=$2 start rc
    shift 2
    header "$name"
    start=$SECONDS
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if ((rc == 0)); then
        say "--- $name: ok in $((SECONDS - start))s"
        if [[ $counted == counted ]]; then
            passed=$((passed + 1))
        fi
        return 0
    fi
    say "--- $name: FAILED (exit $rc) in $((SECONDS - start))s"
    failed=$((failed + 1))
    summary
    exit 1
}

skip_stage() {
    header "$1"
    say "--- $1: skipped: $2"
    skipped=$((skipped + 1))
}

# ---------------------------------------------------------------- preparation

install_system_packages() {
    if [[ ${TUNTAP_SKIP_APT:-} == 1 ]]; then
        say "TUNTAP_SKIP_APT=1: not checking Debian packages"
        return 0
    fi
    local package missing=()
    for package in "${SYSTEM_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null) != ii* ]]; then
            missing+=("$package")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "all ${#SYSTEM_PACKAGES[@]} Debian packages are installed"
        return 0
    fi
    if ((EUID != 0)); then
        say "missing Debian packages: ${missing[*]}; run as root or install them" >&2
        return 1
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

base_python() {
    if [[ -n ${TUNTAP_PYTHON:-} ]]; then
        say "$TUNTAP_PYTHON"
    elif [[ -x /usr/bin/python3 ]]; then
        # Debian's Python, so that --system-site-packages sees python3-nftables and friends.
        say /usr/bin/python3
    else
        command -v python3
    fi
}

# The venv sees the system site packages: modules under test import nftables (Debian's
# python3-nftables, not on PyPI) just as they do on a Debian host.
prepare_venv() {
    local python stamp wanted requirements=()
    python=$(base_python)
    if [[ -f $REPO_ROOT/tests/unit/requirements.txt ]]; then
        requirements=(-r "$REPO_ROOT/tests/unit/requirements.txt")
    fi
    wanted=$(
        "$python" -c 'import sys; print(sys.version)'
        printf '%s\n' "$python" "${VENV_PACKAGES[@]}"
        if ((${#requirements[@]})); then cat "${requirements[1]}"; fi
    )
    stamp=$VENV/.tuntap-qemu-installed
    if [[ -x $VENV/bin/python && -f $stamp && $(<"$stamp") == "$wanted" ]] && "$VENV/bin/python" -c 'import ansible' 2>/dev/null; then
        say "reusing $VENV"
        return 0
    fi
    say "preparing $VENV from $python"
    mkdir -p "$(dirname "$VENV")"
    if ! [[ -x $VENV/bin/python ]] || ! grep -qx 'include-system-site-packages = true' "$VENV/pyvenv.cfg" \
        || [[ $("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) != $("$python" -c 'import sys; print(sys.version)') ]]; then
        "$python" -m venv --clear --system-site-packages "$VENV"
    fi
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${VENV_PACKAGES[@]}" "${requirements[@]}"
    printf '%s\n' "$wanted" >"$stamp"
}

# Like prepare_venv, for the lint stage: (re)created only when missing or when its Python or
# the pins change. No system site packages: ansible-lint only reads the collection.
prepare_lint_venv() {
    local python stamp wanted
    python=$(base_python)
    wanted=$(
        "$python" -c 'import sys; print(sys.version)'
        printf '%s\n' "$python" "${LINT_VENV_PACKAGES[@]}"
    )
    stamp=$LINT_VENV/.tuntap-qemu-installed
    if [[ -x $LINT_VENV/bin/ansible-lint && -x $LINT_VENV/bin/antsibull-changelog && -f $stamp && $(<"$stamp") == "$wanted" ]]; then
        say "reusing $LINT_VENV"
        return 0
    fi
    say "preparing $LINT_VENV from $python"
    mkdir -p "$(dirname "$LINT_VENV")"
    if ! [[ -x $LINT_VENV/bin/python ]] \
        || [[ $("$LINT_VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null) != $("$python" -c 'import sys; print(sys.version)') ]]; then
        "$python" -m venv --clear "$LINT_VENV"
    fi
    rm -f "$stamp"
    "$LINT_VENV/bin/python" -m pip install --disable-pip-version-check -q "${LINT_VENV_PACKAGES[@]}"
    printf '%s\n' "$wanted" >"$stamp"
}

collection_field() {
    sed -n "s/^$1:[[:space:]]*['\"]\{0,1\}\([A-Za-z0-9_]*\).*/\1/p" "$REPO_ROOT/galaxy.yml" | head -n 1
}

# The temporary folder is made by the main shell, so that stages and cleanup know it.
make_work_dir() {
    local namespace name
    namespace=$(collection_field namespace)
    name=$(collection_field name)
    if [[ -z $namespace || -z $name ]]; then
        say "galaxy.yml names no namespace/name" >&2
        exit 1
    fi
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tuntap-qemu-test.XXXXXX")
    COLLECTION=$WORK/ansible_collections/$namespace/$name
    if [[ ${TUNTAP_KEEP_WORK:-} == 1 ]]; then
        say "TUNTAP_KEEP_WORK=1: the collection copy stays in $COLLECTION"
    fi
}

# Copy the work tree (tracked and untracked files, minus what git ignores) to where
# ansible-test expects a collection: .../ansible_collections/<namespace>/<name>.
lay_out_collection() {
    mkdir -p "$COLLECTION"
    if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # -c lists tracked files even when deleted in the work tree: keep only those that exist.
        (cd "$REPO_ROOT" && git ls-files -z -co --exclude-standard \
            | while IFS= read -r -d '' path; do
                if [[ -e $path || -L $path ]]; then printf '%s\0' "$path"; fi
            done \
            | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$COLLECTION"
        say "copied $(find "$COLLECTION" -type f | wc -l) files listed by git to $COLLECTION"
    else
        (cd "$REPO_ROOT" && tar --exclude=./.git --exclude=./tests/output -cf - .) | tar -xf - -C "$COLLECTION"
        say "not a git checkout: copied $REPO_ROOT to $COLLECTION"
    fi
}

prepare() {
    install_system_packages
    prepare_venv
    lay_out_collection
}

# ---------------------------------------------------------------- stages

ansible_test() {
    local python_version
    python_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    cd "$COLLECTION"
    say "+ ansible-test $* --python $python_version --requirements"
    PATH="$VENV/bin:$PATH" "$VENV/bin/ansible-test" "$@" --python "$python_version" --requirements
}

stage_sanity() {
    # ansible-test bootstraps each sanity venv with get-pip from a host outside the package
    # registries; give it a stand-in built from PyPI's pip wheel instead.
    "$VENV/bin/python" "$REPO_ROOT/tests/ci/get_pip_offline.py"
    ansible_test sanity
}

# ansible-lint with the production profile and .ansible-lint (its skips carry their reasons),
# run in the laid-out copy so that syntax-check resolves tuntap.qemu's own modules; then the
# changelog fragments, and the changelog built from them in a copy of its own (release of the
# version in galaxy.yml, or only generate when that version is already released).
stage_lint() {
    local out=$WORK/changelog-build copy
    prepare_lint_venv
    cd "$COLLECTION"
    say "+ ansible-lint --profile production"
    ANSIBLE_COLLECTIONS_PATH=$WORK PATH="$LINT_VENV/bin:$PATH" "$LINT_VENV/bin/ansible-lint" --profile production
    say "+ antsibull-changelog lint"
    "$LINT_VENV/bin/antsibull-changelog" lint
    "$LINT_VENV/bin/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml
    copy=$out/${COLLECTION#"$WORK"/}
    mkdir -p "$(dirname "$copy")"
    cp -a "$COLLECTION" "$copy"
    cd "$copy"
    rm -rf tests/output
    if "$LINT_VENV/bin/python" - <<'PY'
import sys
import yaml

with open('galaxy.yml') as handle:
    version = str(yaml.safe_load(handle)['version'])
with open('changelogs/changelog.yaml') as handle:
    releases = yaml.safe_load(handle).get('releases') or {}
print('galaxy.yml version %s: %s' % (version, 'released' if version in releases else 'not released yet'))
sys.exit(0 if version in releases else 1)
PY
    then
        say "+ antsibull-changelog generate"
        ANSIBLE_COLLECTIONS_PATH=$out PATH="$LINT_VENV/bin:$PATH" "$LINT_VENV/bin/antsibull-changelog" generate
    else
        say "+ antsibull-changelog release (in the copy)"
        ANSIBLE_COLLECTIONS_PATH=$out PATH="$LINT_VENV/bin:$PATH" "$LINT_VENV/bin/antsibull-changelog" release --date "$(date -u +%F)"
    fi
    test -s CHANGELOG.md
    say "the changelog builds: $(grep -c '^## v' CHANGELOG.md) releases in CHANGELOG.md ($(wc -l <CHANGELOG.md) lines)"
}

# ansible-test turns "no test found" into success (it accepts pytest's exit 5 and exits 0
# on "All targets skipped"): count what its JUnit reports say ran, and fail on nothing.
count_junit_tests() {
    "$VENV/bin/python" - "$COLLECTION/tests/output/junit" <<'PY'
import glob
import os
import sys
import xml.etree.ElementTree as ElementTree

total = 0
for path in glob.glob(os.path.join(sys.argv[1], '*.xml')):
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.iter('testsuite')
    total += sum(int(suite.get('tests', 0)) for suite in suites)
print(total)
PY
}

require_unit_tests_ran() {
    local count
    count=$(count_junit_tests)
    if ((count == 0)); then
        say "ansible-test units ran no test" >&2
        return 1
    fi
    say "ansible-test units ran $count tests (JUnit reports)"
}

stage_units() {
    ansible_test units
    require_unit_tests_ran
}

# Targets marked destructive change the machine they run on (namespaces, /etc/netns);
# this machine is the one the tests are for, so they run here. needs/root targets run
# because the tests run as root.
#
# The targets run in TUNTAP_INTEGRATION_GROUPS groups (default 2) side by side, each group an
# ansible-test integration of its own in a copy of the collection of its own
# ($WORK/integration-gN/ansible_collections/<namespace>/<name>: ansible-test needs that path
# and writes tests/output there). tests/ci/integration_groups.py splits the targets by their
# measured seconds (its WEIGHTS), keeps targets that share a machine-wide name in one group
# (its TOGETHER), runs the few that need the machine to themselves first, alone (its SOLO:
# groups s1, s2, ...), and checks at the end that every group passed and ran exactly its targets,
# so that each target of tests/integration/targets (not setup_, hidden or disabled; new ones
# too) runs once. While the groups run, only "[gN] Running <target> ..." lines show; each
# group's whole log follows once all have finished, every line prefixed with [gN], and stays
# in tests/output/integration-gN.log with the JUnit and timing results of every group.
stage_integration() {
    local listed=$WORK/integration-listed.txt groups=$WORK/integration-groups.txt
    local narrowed=() plan_args=() members=() dirs=() pids=() group dir copy pid path python_version
    python_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    # TUNTAP_INTEGRATION_TARGETS="tap_device bridge_port" narrows the run (default: all).
    read -r -a narrowed <<<"${TUNTAP_INTEGRATION_TARGETS:-}"
    if ((${#narrowed[@]})); then
        plan_args=(--narrowed)
    fi
    (cd "$COLLECTION" && PATH="$VENV/bin:$PATH" "$VENV/bin/ansible-test" integration --list-targets \
        --allow-destructive "${narrowed[@]}") >"$listed"
    "$VENV/bin/python" "$COLLECTION/tests/ci/integration_groups.py" plan "$COLLECTION/tests/integration/targets" \
        "$listed" "${TUNTAP_INTEGRATION_GROUPS:-2}" "${plan_args[@]}" >"$groups"
    while read -r group path; do
        read -r -a members <<<"$path"
        dir=$WORK/integration-$group
        copy=$dir/${COLLECTION#"$WORK"/}
        mkdir -p "$copy"
        (cd "$COLLECTION" && tar --exclude=./tests/output -cf - .) | tar -xf - -C "$copy"
        say "[$group] + ansible-test integration --allow-destructive ${members[*]} --python $python_version --requirements"
        (
            set +e
            start=$SECONDS
            cd "$copy" && PATH="$VENV/bin:$PATH" "$VENV/bin/ansible-test" integration --allow-destructive "${members[@]}" \
                --python "$python_version" --requirements </dev/null 2>&1 | tee "$dir/log" \
                | sed -u -n "s/^\(Running [^ ]* integration test.*\)/[$group] \1/p"
            rc=${PIPESTATUS[0]}
            printf '%s\n' "$rc" >"$dir/rc"
            say "[$group] ansible-test integration exited $rc after $((SECONDS - start))s"
        ) &
        pids+=("$!")
        dirs+=("$dir")
        if [[ $group == s* ]]; then
            wait "$!" || true
        fi
    done <"$groups"
    for pid in "${pids[@]}"; do
        wait "$pid" || true
    done
    mkdir -p "$COLLECTION/tests/output/junit" "$COLLECTION/tests/output/data"
    for dir in "${dirs[@]}"; do
        group=${dir##*/integration-}
        say ''
        say "----- [$group] log of ansible-test integration $(sed -n "s/^$group //p" "$groups")"
        sed "s/^/[$group] /" "$dir/log"
        copy=$dir/${COLLECTION#"$WORK"/}
        cp "$dir/log" "$COLLECTION/tests/output/integration-$group.log"
        for path in "$copy"/tests/output/junit/*.xml; do
            if [[ -f $path ]]; then cp "$path" "$COLLECTION/tests/output/junit/"; fi
        done
        for path in "$copy"/tests/output/data/*.json; do
            if [[ -f $path ]]; then cp "$path" "$COLLECTION/tests/output/data/$(basename -- "$path" .json)-$group.json"; fi
        done
    done
    say ''
    "$VENV/bin/python" "$COLLECTION/tests/ci/integration_groups.py" check "$groups" "${dirs[@]}"
}

# The collection as users get it: build the tarball, install it, and read every plugin's
# documentation from the installed copy.
stage_build() {
    local out=$WORK/build plugin path role
    mkdir -p "$out"
    cd "$COLLECTION"
    "$VENV/bin/ansible-galaxy" collection build --force --output-path "$out"
    "$VENV/bin/ansible-galaxy" collection install --force -p "$out/installed" "$out"/tuntap-qemu-*.tar.gz
    # Every module and role of the tree (a new one is documented from the tarball too), the
    # connection and the filters by name (a filter file holds several).
    local plugins=() roles=()
    for path in "$COLLECTION"/plugins/modules/*.py; do
        plugins+=("module:$(basename -- "$path" .py)")
    done
    for path in "$COLLECTION"/roles/*/meta/argument_specs.yml; do
        roles+=("$(basename -- "$(dirname -- "$(dirname -- "$path")")")")
    done
    plugins+=(connection:netns filter:guest_interfaces filter:guest_kernel_ip filter:stable_mac filter:interfaces_config)
    say "documenting ${#plugins[@]} plugins and ${#roles[@]} roles from the installed tarball"
    for plugin in "${plugins[@]}"; do
        ANSIBLE_COLLECTIONS_PATH=$out/installed "$VENV/bin/ansible-doc" -t "${plugin%%:*}" --json \
            "tuntap.qemu.${plugin#*:}" >"$out/doc.json"
        "$VENV/bin/python" - "${plugin#*:}" "$out/installed" "$out/doc.json" <<'PY'
import json
import sys

name, installed, path = sys.argv[1:]
with open(path) as handle:
    entry = json.load(handle)['tuntap.qemu.' + name]
doc = entry['doc']
assert doc['filename'].startswith(installed), doc['filename']
assert doc['description'] and doc.get('options') is not None, 'description and options'
if '/modules/' in doc['filename']:
    assert entry['examples'].strip() and entry['return'], 'examples and return values'
print('%s: documented from the installed tarball (%d options)' % (name, len(doc['options'])))
PY
    done
    for role in "${roles[@]}"; do
        ANSIBLE_COLLECTIONS_PATH=$out/installed "$VENV/bin/ansible-doc" -t role --json \
            "tuntap.qemu.$role" >"$out/doc.json"
        "$VENV/bin/python" - "$role" "$out/doc.json" <<'PY'
import json
import sys

name, path = sys.argv[1:]
with open(path) as handle:
    entry = json.load(handle)['tuntap.qemu.' + name]
main = entry['entry_points']['main']
assert main['short_description'] and main['options'], 'argument_specs of the role'
print('role %s: argument_specs with %d options' % (name, len(main['options'])))
PY
    done
}

# e2e gets the venv on PATH and tuntap.qemu through the laid-out copy.
stage_e2e() {
    ANSIBLE_COLLECTIONS_PATH=$WORK PATH="$VENV/bin:$PATH" TUNTAP_VENV=$VENV bash "$REPO_ROOT/tests/e2e/run.sh"
}

molecule_root() {
    local dir
    for dir in "$REPO_ROOT/extensions/molecule" "$REPO_ROOT/molecule"; do
        if [[ -d $dir ]]; then
            say "$dir"
            return 0
        fi
    done
    return 1
}

stage_molecule() {
    local root
    root=$(molecule_root)
    # The scenarios use molecule's "ansible:" section (env, playbooks); tested with 26.10.
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q 'molecule>=26.10,<27'
    # Run from the collection copy so that molecule resolves tuntap.qemu from it.
    cd "$COLLECTION/${root#"$REPO_ROOT"/}/.."
    ANSIBLE_COLLECTIONS_PATH=$WORK PATH="$VENV/bin:$PATH" "$VENV/bin/molecule" test --all
}

# A real Debian 12 host per topology: a VM under QEMU on a namespace LAN, reached over
# SSH, converged, rebooted for real and compared (tests/realhost/run_stage.py).
# TUNTAP_REALHOST_ARGS="--only bridged_lan" narrows it.
stage_realhost() {
    local args=()
    read -r -a args <<<"${TUNTAP_REALHOST_ARGS:-}"
    # The state comparison's pure parts first (seconds), then the VMs.
    PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$REPO_ROOT/tests/realhost/test_host_state.py"
    TUNTAP_VENV=$VENV "$VENV/bin/python" "$REPO_ROOT/tests/realhost/run_stage.py" --collections "$WORK" "${args[@]}"
}

# ---------------------------------------------------------------- main

main() {
    local stage stages=("$@")
    if ((${#stages[@]} == 0)); then
        stages=(sanity lint units integration build)
        [[ -f $REPO_ROOT/tests/e2e/run.sh ]] && stages+=(e2e)
        molecule_root >/dev/null && stages+=(molecule)
        stages+=(realhost)
    fi
    if ((${#stages[@]} == 1)) && [[ ${stages[0]} == prepare ]]; then
        make_work_dir
        install_system_packages
        prepare_venv
        return 0
    fi
    for stage in "${stages[@]}"; do
        case $stage in
            sanity | lint | units | integration | build | e2e | molecule | realhost) ;;
            *)
                say "unknown stage '$stage'; stages: ${ALL_STAGES[*]}" >&2
                exit 2
                ;;
        esac
    done

    make_work_dir
    run_step prepare uncounted prepare

    for stage in "${stages[@]}"; do
        case $stage in
            e2e)
                if [[ ! -f $REPO_ROOT/tests/e2e/run.sh ]]; then
                    skip_stage e2e "tests/e2e/run.sh does not exist yet"
                    continue
                fi
                ;;
            molecule)
                if ! molecule_root >/dev/null; then
                    skip_stage molecule "no molecule scenarios (extensions/molecule/) yet"
                    continue
                fi
                ;;
        esac
        run_step "$stage" counted "stage_$stage"
    done
    summary
}

main "$@"
