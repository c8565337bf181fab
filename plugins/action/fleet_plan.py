# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tuntap.qemu.fleet_plan: validate the tuntap_qemu_* variables of every host, return the plan.

Runs on the controller only (no connection, nothing changes anywhere); the logic is in
module_utils/_fleet/ (planner.py), the documentation in plugins/modules/fleet_plan.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.tuntap.qemu.plugins.module_utils._fleet import planner, schema

ARGUMENT_SPEC = {
    'hosts': {'type': 'list', 'elements': 'str'},
}


def plain(value):
    """A copy made of dict, list, str, int, float, bool and None.

    Templated host variables arrive as ansible's own (sometimes lazy, sometimes tagged)
    types; the plan works on plain data, and reading it here surfaces templating errors.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return dict((plain(key), plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def read_inventory(hosts, hostvars):
    """({host: {variable: plain value}}, errors) for the variables the plan reads.

    A host whose variables cannot be read is left out of the inventory (its errors say
    why), so that the plan does not report them a second time as missing.
    """
    inventory = {}
    errors = []
    for host in hosts:
        if host not in hostvars:
            errors.append('%s: not a host of the inventory' % host)
            continue
        host_vars = hostvars[host]
        variables = {}
        host_errors = []
        for name in schema.HOST_VARIABLES:
            try:
                if name in host_vars:
                    variables[name] = plain(host_vars[name])
            except AnsibleError as exc:
                host_errors.append('%s: %s: cannot be templated: %s' % (host, name, exc))
        if host_errors:
            errors.extend(host_errors)
        else:
            inventory[host] = variables
    return inventory, errors


def _count(number, noun):
    return '%d %s%s' % (number, noun, '' if number == 1 else 's')


class ActionModule(ActionBase):
    """Validate the fleet's inventory and return each host's plan."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hosts = args['hosts']
        if hosts is None:
            hosts = plain(task_vars.get('ansible_play_hosts_all') or [])
        inventory, errors = read_inventory(hosts, task_vars.get('hostvars') or {})
        plan, plan_errors = planner.plan_fleet(inventory)
        errors = sorted(errors) + plan_errors

        result['changed'] = False
        if errors:
            result['failed'] = True
            result['errors'] = errors
            result['msg'] = '%s in the tuntap_qemu_* variables of %s: %s' % (
                _count(len(errors), 'problem'), _count(len(hosts), 'host'), '; '.join(errors))
            return result
        result['plan'] = plan
        result['summary'] = planner.summary(plan)
        result['msg'] = 'planned %s with %s' % (
            _count(len(plan), 'host'), _count(sum(len(spec['guests']) for spec in plan.values()), 'guest'))
        return result
