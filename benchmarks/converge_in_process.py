# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link modules' work without Ansible: specs -> read -> plan -> apply -> read again.

Run by taps_vs_ip_batch.py inside a fresh network namespace (``ip netns exec NS``); it
must never run in the root namespace, because it creates a bridge and N taps.

It does what ``bridge_port`` (name=br0) and then ``tap_device`` (names, user, bridge) do
after AnsibleModule has parsed their arguments, through the same module_utils calls as
_links/converge.py (through module_runner), each stage timed with time.perf_counter():

    specs    specs.bridge_spec / tap_specs      (validation, user lookup)
    open     netlink.open_netlink()
    read     reading.read_snapshot()         one dump of links, one of addresses
    plan     planning.plan_bridge / plan_tap
    apply    applying.apply_plan()           skipped when nothing changes
    reread   reading.read_snapshot()         the state the module returns
    result   reading.device_facts()          the module's return values

Two module calls in a row, as in the playbook; then the same again (the no-change
converge, which must plan no action). Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import types

STAGES = ('specs', 'open', 'read', 'plan', 'apply', 'reread', 'result')

# The parameters AnsibleModule hands to each module for the benchmark's tasks: the
# options given in the playbook plus the defaults of the modules' argument_spec.
BRIDGE_PARAMS = {
    'name': 'br0', 'state': 'present', 'ports': None, 'exclusive': False, 'move_ports': False,
    'stp': None, 'forward_delay': None, 'mtu': None, 'link_state': 'up', 'addresses': None,
    'uplink': None,
}
TAP_PARAMS = {
    'name': None, 'names': None, 'devices': None, 'mode': 'tap', 'user': None, 'group': None,
    'multi_queue': None, 'vnet_hdr': None, 'mtu': None, 'addresses': None, 'link_state': 'up',
    'bridge': None, 'state': 'present',
}


class ConvergeError(Exception):
    """The module_utils reported an error or the converge did not do what was asked."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--collections', required=True,
                        help='folder that holds ansible_collections/tuntap/qemu')
    parser.add_argument('--count', type=int, required=True, help='number of taps')
    parser.add_argument('--user', default='nobody', help='owner of the taps')
    parser.add_argument('--bridge', default='br0', help='bridge that holds the taps')
    parser.add_argument('--profile', metavar='PREFIX',
                        help='profile with cProfile; write PREFIX-{first,no-change}.{prof,txt}')
    return parser.parse_args(argv)


def timed_call(times, stage, function, *args):
    start = time.perf_counter()
    value = function(*args)
    times[stage] = times.get(stage, 0.0) + time.perf_counter() - start
    return value


def module_call(links, specs, planner, times):
    """What _links/converge.py does for one module call."""
    snapshot = timed_call(times, 'read', links.read_snapshot)
    plan = links.LinkPlan(snapshot)

    def plan_all():
        for spec in specs:
            planner(plan, spec)
    timed_call(times, 'plan', plan_all)
    if plan.errors:
        raise ConvergeError('; '.join(plan.errors))
    if plan.changed:
        ipr = timed_call(times, 'open', links.open_netlink)
        try:
            timed_call(times, 'apply', links.apply_plan, ipr, plan)
        finally:
            ipr.close()
        snapshot = timed_call(times, 'reread', links.read_snapshot)
    timed_call(times, 'result', lambda: [links.device_facts(snapshot, spec['name']) for spec in specs])
    return plan


def converge(links, link_specs, options):
    """bridge_port then tap_device, in-process. Returns (changed per module, stage times)."""
    times = dict((stage, 0.0) for stage in STAGES)
    bridge_params = dict(BRIDGE_PARAMS, name=options.bridge)
    tap_params = dict(TAP_PARAMS, user=options.user, bridge=options.bridge,
                      names=['tap%d' % index for index in range(options.count)])
    changed = {}

    bridge, errors = timed_call(times, 'specs', link_specs.bridge_spec, bridge_params)
    if errors:
        raise ConvergeError('; '.join(errors))
    changed['bridge_port'] = module_call(links, [bridge], links.plan_bridge, times).changed

    taps, errors = timed_call(times, 'specs', link_specs.tap_specs, tap_params)
    if errors:
        raise ConvergeError('; '.join(errors))
    changed['tap_device'] = module_call(links, taps, links.plan_tap, times).changed

    times['total'] = sum(times[stage] for stage in STAGES)
    return changed, times


def profiled(prefix, label, function, *args):
    """Run function under cProfile; write the raw profile and a text summary."""
    profiler = cProfile.Profile()
    value = profiler.runcall(function, *args)
    path = '%s-%s' % (prefix, label)
    profiler.dump_stats(path + '.prof')
    with open(path + '.txt', 'w') as summary:
        stats = pstats.Stats(profiler, stream=summary).strip_dirs()
        summary.write('== %s: top 30 by cumulative time\n' % label)
        stats.sort_stats('cumulative').print_stats(30)
        summary.write('== %s: top 30 by own time\n' % label)
        stats.sort_stats('tottime').print_stats(30)
    return value


def pyroute2_version():
    from importlib import metadata
    try:
        return metadata.version('pyroute2')
    except metadata.PackageNotFoundError:
        import pyroute2
        return getattr(pyroute2, '__version__', 'unknown')


def main(argv=None):
    options = parse_args(argv)
    sys.path.insert(0, os.path.abspath(options.collections))

    start = time.perf_counter()
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import (
        applying, netlink, planning, reading)
    from ansible_collections.tuntap.qemu.plugins.module_utils._links import specs as link_specs
    import_seconds = time.perf_counter() - start
    if not netlink.available():
        raise ConvergeError('pyroute2 is missing')
    # The link subsystem's functions this benchmark times, by their stage.
    links = types.SimpleNamespace(
        read_snapshot=reading.read_snapshot, device_facts=reading.device_facts,
        LinkPlan=planning.LinkPlan, plan_bridge=planning.plan_bridge, plan_tap=planning.plan_tap,
        open_netlink=netlink.open_netlink, apply_plan=applying.apply_plan)
    runs = {}
    for label, must_change in (('first', True), ('no-change', False)):
        if options.profile:
            changed, times = profiled(options.profile, label, converge, links, link_specs, options)
        else:
            changed, times = converge(links, link_specs, options)
        if changed['tap_device'] != must_change or changed['bridge_port'] != must_change:
            raise ConvergeError('%s converge reported changed=%s, expected %s for both modules'
                                % (label, changed, must_change))
        runs[label] = {'changed': changed, 'seconds': times}

    json.dump({
        'python': sys.version.split()[0],
        'pyroute2': pyroute2_version(),
        'import_seconds': import_seconds,
        'first': runs['first'],
        'no_change': runs['no-change'],
    }, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    try:
        main()
    except ConvergeError as exc:
        sys.exit('converge_in_process: %s' % exc)
