# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge loop shared by the link modules (tap_device, bridge_port).

read state once -> plan every spec -> fail on any error (nothing touched) ->
apply unless check mode -> read once more for the return values.
"""

from __future__ import annotations

import socket

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.tuntap.qemu.plugins.module_utils import links, names


def require_libraries(module):
    """Fail with the Debian and PyPI names of whatever library is missing."""
    if not names.HAS_NETADDR:
        module.fail_json(msg=missing_required_lib(names.NETADDR_LIBRARY),
                         exception=str(names.NETADDR_IMPORT_ERROR))
    if not links.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib(links.PYROUTE2_LIBRARY),
                         exception=str(links.PYROUTE2_IMPORT_ERROR))


def fail_on_errors(module, errors):
    if errors:
        module.fail_json(msg='; '.join(errors), errors=errors)


def converge_links(module, specs, planner):
    """Plan `specs` with `planner` against the kernel, apply, return (plan, snapshot).

    The returned snapshot is the kernel state after the change, or the prediction of it
    in check mode (the planned after-view merged into the current state).
    """
    plan = links.LinkPlan(links.read_snapshot())
    for spec in specs:
        planner(plan, spec)
    fail_on_errors(module, plan.errors)
    if not plan.changed:
        return plan, plan.snapshot
    if module.check_mode:
        return plan, _predicted(plan)
    ipr = links.open_netlink()
    try:
        links.apply_plan(ipr, plan)
    except links.LinkError as exc:
        module.fail_json(msg=str(exc), changed=True, diff=plan.diff())
    finally:
        ipr.close()
    return plan, links.read_snapshot()


def uplink_routes(uplink):
    """The routes read_routes() finds through `uplink`, or [] when it does not exist
    (plan_bridge reports the missing port)."""
    try:
        socket.if_nametoindex(uplink)
    except OSError:
        return []
    ipr = links.open_netlink()
    try:
        return links.read_routes(ipr, uplink)
    finally:
        ipr.close()


def _predicted(plan):
    snapshot = dict(plan.snapshot)
    for name, after in plan.after.items():
        if after is None:
            snapshot.pop(name, None)
        else:
            record = dict(snapshot.get(name) or {'name': name, 'ifindex': None, 'mac': None})
            record.update(after)
            snapshot[name] = record
    return snapshot


def result_for(module, plan, snapshot, names_to_report):
    """The common module result: changed, diff, and the resulting devices."""
    result = {
        'changed': plan.changed,
        'devices': [links.device_facts(snapshot, name) for name in names_to_report
                    if snapshot.get(name) is not None],
    }
    if module._diff:
        result['diff'] = plan.diff()
    return result
