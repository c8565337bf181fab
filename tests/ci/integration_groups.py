# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Split the integration targets into groups that run side by side (tests/run.sh, stage integration).

    python tests/ci/integration_groups.py plan TARGETS_DIR LISTED GROUPS [--narrowed] > groups.txt
    python tests/ci/integration_groups.py check groups.txt GROUP_DIR...

plan: the targets are the folders of TARGETS_DIR that are no setup_ target and whose aliases say
neither hidden nor disabled; LISTED is what `ansible-test integration --list-targets` printed
(with TUNTAP_INTEGRATION_TARGETS as its arguments when --narrowed). Without --narrowed the two
must be the same set, so that a target ansible-test would skip, or a folder it does not know,
stops the stage before anything runs; with it, the listed targets are the ones to run. The
targets of SOLO come first, each a group of its own (s1, s2, ...) that runs alone; the others
are split into at most GROUPS groups (g1, g2, ...) of balanced weight (the seconds in WEIGHTS,
largest first, each to the lightest group), the targets of one entry of TOGETHER always in one
group. Each line of the output is one group: its name, then its targets.

check: GROUP_DIR/log is a group's ansible-test output, GROUP_DIR/rc its exit status and
GROUP_DIR/ansible_collections/*/*/tests/output/data/*.json its results. Every group must have passed and run exactly its
targets, each once ("Running NAME integration test role|script"); prints the seconds every
target took (ansible-test's run_time_seconds) and each group's sum, for the WEIGHTS below.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

# Seconds per target: ansible-test's run_time_seconds (tests/output/data/integration-*.json) of
# the sequential run of 2026-12-02 07:10 UTC in this layout (confirmed_change alone, then two
# groups side by side; stage 1010 s, groups 608 s and 824 s of targets) on the 2-core machine
# with nothing else on it. The second number is the run of 2026-12-01 19:13 UTC (a loaded
# machine), before the issue 13 targets grew. Only the ratios matter for the split. A target
# missing here counts DEFAULT_WEIGHT; `check` prints what each target took, for the next
# update of this table.
WEIGHTS = {
    'port_forward': 204,        # 282
    'bridge_port': 199,         # 125
    'masquerade': 185,          # 178
    'qemu_guest': 179,          # 147
    'confirmed_change': 179,    # 127 (alone, see SOLO)
    'tap_device': 118,          # 145
    'guest_dhcp': 114,          # 91
    'link_prune': 98,           # 125
    'concurrency': 95,          # 103
    'guest_prune': 48,          # 45
    'ip_forward': 43,           # 30
    'uplink_info': 39,          # 57
    'nat_boot_unit': 35,        # 36
    'uplink_stanza': 33,        # 56
    'vde_switch': 25,           # 33
    'connection_netns': 9,      # 14
    'missing_libraries': 5,     # 4
    'fleet_plan': 2,            # 1
    'rtnl_snapshot': 1,         # 2
}
DEFAULT_WEIGHT = 90

# Targets that must not run at the same time as each other, so they go to one group. Every
# other pair was checked (runme.sh, the playbooks, setup_netns and setup_nat_lab): namespaces
# are ttq-<target>-<pid>-<n> and ttq-nat-<pid>-<n>-*, work folders come from mktemp, the
# host lock (/run/tuntap-qemu/lock.net-<inode>) is per namespace, servers and dnsmasq listen
# inside namespaces, dhclient and dnsmasq get pid and lease files of the test's own folder,
# and every root-namespace check only reads what no target changes.
TOGETHER = (
    # The NAT lab targets run iptables-legacy themselves (masquerade_iptables.yml flushes with
    # `iptables-legacy -t nat -F`), without -w: a second iptables-legacy holding the one
    # machine-wide /run/xtables.lock at that moment makes it fail instead of wait.
    ('masquerade', 'port_forward', 'nat_boot_unit'),
    # Both boot real QEMU guests under TCG with boot timeouts (90 s, 120 s), and both build the
    # test guest into the one cache /var/cache/tuntap-qemu/guest (the build holds a lock there,
    # its resolved.json.tmp is one fixed name).
    ('qemu_guest', 'guest_prune'),
)

# Targets that run alone, before the groups start: confirm.yml of confirmed_change arms a
# rollback (5 s then, 20 s since 2026-12-02) and must run four modules (slurp, the takeover,
# two confirms) before it fires. Beside a second group on the busy 2-core machine that took longer than 5 s
# (two-group run of 2026-12-01 18:57 UTC: "not confirmed within 5 s", rolled back; it had
# passed beside the other group at 18:33). Alone it passed (19:13).
SOLO = ('confirmed_change',)

RUNNING = re.compile(r'^Running (\S+) integration test (?:role|script)\b', re.M)


def runnable_targets(targets_dir):
    """Folders of targets_dir that ansible-test runs by default (not setup_, hidden, disabled)."""
    names = []
    for name in sorted(os.listdir(targets_dir)):
        path = os.path.join(targets_dir, name)
        if not os.path.isdir(path) or name.startswith('setup_'):
            continue
        aliases = set()
        try:
            with open(os.path.join(path, 'aliases')) as handle:
                aliases = {line.split('#', 1)[0].strip() for line in handle}
        except FileNotFoundError:
            pass
        if aliases & {'hidden', 'disabled'}:
            continue
        names.append(name)
    return names


def units_of(targets):
    """The targets as units that stay together: (weight, [names]) per unit."""
    left = list(targets)
    units = []
    for members in TOGETHER:
        unit = [name for name in members if name in left]
        if unit:
            units.append(unit)
            left = [name for name in left if name not in unit]
    units.extend([name] for name in left)
    return [(sum(WEIGHTS.get(name, DEFAULT_WEIGHT) for name in unit), unit) for unit in units]


def split(targets, count):
    """Longest unit first, each to the lightest group so far: [(weight, [names])], none empty."""
    groups = [[0, []] for _index in range(max(1, count))]
    for weight, unit in sorted(units_of(targets), key=lambda item: (-item[0], item[1])):
        lightest = min(groups, key=lambda group: group[0])
        lightest[0] += weight
        lightest[1].extend(unit)
    return [(weight, names) for weight, names in groups if names]


def plan(targets_dir, listed_path, count, narrowed):
    runnable = runnable_targets(targets_dir)
    with open(listed_path) as handle:
        listed = sorted({line.strip() for line in handle if re.match(r'^[A-Za-z0-9_]+$', line.strip())})
    if not listed:
        sys.exit('integration_groups: ansible-test --list-targets listed no target')
    if narrowed:
        unknown = sorted(set(listed) - set(os.listdir(targets_dir)))
        if unknown:
            sys.exit('integration_groups: ansible-test listed targets that are no folder: %s' % ' '.join(unknown))
        targets = listed
    else:
        if set(listed) != set(runnable):
            sys.exit('integration_groups: ansible-test would run %s, the targets folder holds %s (not setup_, '
                     'hidden or disabled); only in ansible-test: %s; only in the folder: %s'
                     % (len(listed), len(runnable), ' '.join(sorted(set(listed) - set(runnable))) or '-',
                        ' '.join(sorted(set(runnable) - set(listed))) or '-'))
        targets = runnable
    alone = [name for name in SOLO if name in targets]
    for index, name in enumerate(alone, start=1):
        print('s%d %s' % (index, name))
        print('integration_groups: s%d runs alone, first: %s %d' % (index, name, WEIGHTS.get(name, DEFAULT_WEIGHT)),
              file=sys.stderr)
    rest = [name for name in targets if name not in alone]
    for index, (weight, names) in enumerate(split(rest, count) if rest else [], start=1):
        print('g%d %s' % (index, ' '.join(names)))
        weights = ['%s %d%s' % (name, WEIGHTS.get(name, DEFAULT_WEIGHT), '' if name in WEIGHTS else ' (unmeasured)')
                   for name in names]
        print('integration_groups: g%d weighs %d s: %s' % (index, weight, ', '.join(weights)), file=sys.stderr)


def run_times(group_dir):
    times = {}
    pattern = os.path.join(group_dir, 'ansible_collections', '*', '*', 'tests', 'output', 'data', 'integration-*.json')
    for path in sorted(glob.glob(pattern)):
        with open(path) as handle:
            for name, result in json.load(handle).get('targets', {}).items():
                times[name] = result.get('run_time_seconds')
    return times


def check(groups_path, group_dirs):
    with open(groups_path) as handle:
        groups = [line.split() for line in handle if line.strip()]
    if len(groups) != len(group_dirs):
        sys.exit('integration_groups: %d groups planned, %d results given' % (len(groups), len(group_dirs)))
    errors = []
    total = 0
    for (name, *expected), group_dir in zip(groups, group_dirs):
        with open(os.path.join(group_dir, 'log'), errors='replace') as handle:
            ran = RUNNING.findall(handle.read())
        try:
            with open(os.path.join(group_dir, 'rc')) as handle:
                rc = handle.read().strip()
        except FileNotFoundError:
            rc = 'missing'
        times = run_times(group_dir)
        seconds = sum(value or 0 for value in times.values())
        print('integration %s: exit %s, ran %d of %d targets, %d s of targets: %s' % (
            name, rc, len(ran), len(expected), seconds,
            ', '.join('%s %s' % (target, '%ss' % times[target] if times.get(target) is not None else '-')
                      for target in ran) or 'none'))
        total += len(ran)
        if rc != '0':
            errors.append('group %s: ansible-test exited %s' % (name, rc))
        if not ran:
            errors.append('group %s: ansible-test ran no target' % name)
        if sorted(ran) != sorted(expected):
            errors.append('group %s: ran %s, planned %s' % (name, ' '.join(ran) or 'nothing', ' '.join(expected)))
    planned = [target for _name, *names in groups for target in names]
    if len(planned) != len(set(planned)):
        errors.append('a target is planned in two groups: %s' % ' '.join(planned))
    for error in errors:
        print('integration_groups: %s' % error, file=sys.stderr)
    if errors:
        sys.exit(1)
    print('ansible-test integration ran %d targets in %d groups, each target once' % (total, len(groups)))


def main(argv):
    if len(argv) >= 4 and argv[0] == 'plan' and argv[3].isdigit() and argv[4:] in ([], ['--narrowed']):
        plan(argv[1], argv[2], int(argv[3]), argv[4:] == ['--narrowed'])
    elif len(argv) >= 3 and argv[0] == 'check':
        check(argv[1], argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
