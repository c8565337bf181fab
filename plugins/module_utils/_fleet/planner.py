# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet plan: every hypervisor's inventory validated at once, then its derived plan.

    plan, errors = plan_fleet({'hv1': {'tuntap_qemu_topology': 'routed', ...}, ...})

The input is the `tuntap_qemu_*` variables of each host (docs/inventory.md describes them).
The output is, per host, what the topology roles converge: taps, the bridge, forwarding,
NAT and the guests with every default filled in (tap names, stable MACs, gateways, and
subnets or addresses planned from a pool). Pure functions over plain data; nothing here
looks at a host. Every problem of the whole fleet is collected in one pass, each naming the
host, the variable path and the value; the plan is only built when there is none.

Each step takes records and returns values (new records, resolved guests); what differs
between topologies is read from their rule objects (topologies.py).
"""

from __future__ import annotations

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import checks, host_plan, pools, reading
from ansible_collections.tuntap.qemu.plugins.module_utils._fleet.records import Problems


def plan_fleet(inventory):
    """({host: host_plan}, []) for a valid fleet, else (None, [every problem]).

    `inventory` maps inventory_hostname to that host's variables (plain data); only the
    names in schema.HOST_VARIABLES are read.
    """
    problems = Problems()
    hosts = [reading.read_host(name, inventory[name], problems.for_host(name)) for name in sorted(inventory)]
    checks.check_names(hosts, problems)
    checks.check_macs(hosts, problems)
    hosts = pools.plan_subnets(hosts, problems)
    hosts = [pools.plan_shared_addresses(host, problems) for host in hosts]
    checks.check_pool6_overlaps(hosts, problems)
    hosts = pools.plan_subnets6(hosts, problems)
    hosts = [pools.plan_shared_addresses6(host, problems) for host in hosts]
    resolved = dict((host.host, checks.resolve_guests(host, problems)) for host in hosts)
    checks.check_lan_addresses(hosts, problems)
    checks.check_own_subnet_overlaps(hosts, resolved, problems)
    checks.check_ipv6_networks(hosts, resolved, problems)
    checks.check_guest_services(hosts, problems)
    if problems:
        return None, problems.lines()
    return dict((host.host, host_plan.host_plan(host, resolved[host.host])) for host in hosts), []


def summary(plan):
    """One line per guest (and per host without guests) to show the plan to a human."""
    lines = []
    for host in sorted(plan):
        spec = plan[host]
        if not spec['guests']:
            lines.append('%s %s: no guests' % (host, spec['topology']))
        for guest in spec['guests']:
            # A VDE guest is on the switch's tap.
            where = guest['tap'] if guest.get('vde') is None else '%s (VDE)' % spec['vde']['tap']
            line = '%s %s: %s on %s, mac %s, %s via %s' % (
                host, spec['topology'], guest['name'], where, guest['mac'],
                guest['address'], guest['gateway'] or 'no gateway')
            if guest.get('address6'):
                line += ', %s%s via %s' % (guest['address6'], ' (SLAAC)' if guest['slaac'] else '', guest['gateway6'])
            lines.append(line)
    return lines
