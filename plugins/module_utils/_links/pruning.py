# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune: remove our taps and bridges (marks.py) that the call does not hold.

    names = tap_candidates(snapshot, listed)              # read tun_holders for these only
    plan_tap_prune(plan, listed, holders)                 # tap_device prune=true
    names = bridge_candidates(snapshot, keep)             # read their routes (uplink marks)
    plan_bridge_prune(plan, keep, routes_by_bridge)       # bridge_port prune=true

A link without our mark is never a candidate, whatever its name: an admin's tap7 or bridge
stays as it is. A marked tap that a process holds open (a running guest; its carrier is on,
or tun_holders found the process) is left alone with a warning naming the process, and the
call does not fail. A removed bridge releases its ports; a bridged_lan bridge gives its
uplink the addresses and routes back first (planning.remove_bridge()). Pure functions.
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils._links import marks, planning
from ansible_collections.tuntap.qemu.plugins.module_utils._links.actions import Delete


def _ours(snapshot, kind, keep):
    return sorted(name for name, link in snapshot.items()
                  if link['kind'] == kind and name not in keep and marks.is_ours(link))


def tap_candidates(snapshot, listed):
    """Our taps/tuns (kind tun with our mark) that are not in `listed`, sorted."""
    return _ours(snapshot, 'tun', set(listed))


def bridge_candidates(snapshot, keep):
    """Our bridges that are not in `keep`, sorted."""
    return _ours(snapshot, 'bridge', set(keep))


def plan_tap_prune(plan, listed, holders):
    """Delete every tap_candidates() link that no process holds; `holders` is
    tun_holders.read_holders() of the candidates."""
    for name in tap_candidates(plan.snapshot, listed):
        link = plan.snapshot[name]
        held = holders.get(name) or []
        if held or link.get('carrier'):
            who = (', '.join(holder.describe() for holder in held) if held else
                   'a process outside this network namespace (the device has carrier)')
            plan.in_use.append({'name': name, 'holders': [{'pid': holder.pid, 'comm': holder.comm}
                                                          for holder in held]})
            plan.warnings.append('%s carries the %s mark and is not in this call, but %s holds it '
                                 'open; left alone (stop the guest, then run again to remove it)'
                                 % (name, marks.PREFIX, who))
            continue
        plan.actions.append(Delete(name))
        plan.record(name, dict((field, link.get(field)) for field in planning.TAP_FIELDS), None)
        plan.removed.append(name)


def plan_bridge_prune(plan, keep, routes_by_bridge):
    """Remove every bridge_candidates() bridge; `routes_by_bridge` holds read_routes() of
    those whose mark names an uplink."""
    for name in bridge_candidates(plan.snapshot, keep):
        planning.remove_bridge(plan, name, routes_by_bridge.get(name) or [])
