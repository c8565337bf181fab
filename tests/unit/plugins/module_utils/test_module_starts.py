# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faster module starts (issue 9): a no-change tap_device or bridge_port converge imports
neither pyroute2 (only writes and route reading need it) nor netaddr (no address or MAC in
the request), and a missing library still fails before anything is read or changed.

Each case runs in a fresh interpreter, where sys.modules shows what the module imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner

SCRIPT = r'''
import json, sys
from ansible_collections.tuntap.qemu.plugins.modules import bridge_port, tap_device  # module files
from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._links import converge, reading

def link(name, ifindex, kind, **fields):
    record = {'name': name, 'ifindex': ifindex, 'kind': kind, 'mac': '02:00:00:00:00:%02x' % ifindex,
              'mtu': 1500, 'state': 'up', 'operstate': 'up', 'master_index': 0, 'master': None,
              'addresses': []}
    if kind == 'tun':
        record.update({'mode': 'tap', 'owner': None, 'group': None, 'multi_queue': False,
                       'vnet_hdr': False, 'persist': True})
    if kind == 'bridge':
        record.update({'stp': False, 'forward_delay': 15})
    record.update(fields)
    return record

SNAPSHOT = {'br0': link('br0', 3, 'bridge', alias='tuntap.qemu:bridge')}
SNAPSHOT.update(('tap%d' % n, link('tap%d' % n, 10 + n, 'tun', master='br0', master_index=3,
                                   alias='tuntap.qemu:tap', carrier=False))
                for n in range(4))
reading.read_snapshot = lambda: dict(SNAPSHOT)


class Module:
    # Check mode: the fake snapshot is not the kernel's, so nothing may ever be applied (a
    # planner that disagrees with it would otherwise change the links of the namespace the
    # unit tests run in). A no-change converge is the same in both modes.
    check_mode = True
    _diff = True

    def __init__(self, params):
        self.params = params

    def fail_json(self, **result):
        raise SystemExit(json.dumps(result))


TAP = {'name': None, 'names': ['tap0', 'tap1', 'tap2', 'tap3'], 'devices': None, 'mode': 'tap',
       'user': None, 'group': None, 'multi_queue': None, 'vnet_hdr': None, 'mtu': None,
       'addresses': None, 'link_state': 'up', 'bridge': 'br0', 'state': 'present'}
BRIDGE = {'name': 'br0', 'state': 'present', 'ports': None, 'exclusive': False, 'move_ports': False,
          'stp': None, 'forward_delay': None, 'mtu': None, 'link_state': 'up', 'addresses': None,
          'uplink': None, 'gateway': None, 'readdress': False}
changed = [module_runner.converge(Module(BRIDGE), converge.BridgeSteps())['changed'],
           module_runner.converge(Module(TAP), converge.TapSteps())['changed']]
print(json.dumps({'changed': changed,
                  'imported': sorted(set(name.split('.')[0] for name in sys.modules
                                         if name.split('.')[0] in ('pyroute2', 'netaddr')))}))
'''


def run_fresh(script):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    process = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                             text=True, check=False)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_no_change_converge_imports_neither_pyroute2_nor_netaddr():
    pytest.importorskip('pyroute2')
    outcome = run_fresh(SCRIPT)
    assert outcome == {'changed': [False, False], 'imported': []}


class Failed(Exception):
    pass


class FakeModule:
    check_mode = False
    _diff = False
    params = {}

    def fail_json(self, **result):
        raise Failed(result)


class Steps(module_runner.ModuleSteps):
    libraries = (module_runner.Library('ttq_no_such_library', 'ttq_no_such_library (Debian package '
                                       'python3-ttq-none, PyPI package ttq-none)'),)

    def parse(self, module):
        raise AssertionError('parsed although a library is missing')


def test_missing_library_fails_before_any_step():
    with pytest.raises(Failed) as failure:
        module_runner.converge(FakeModule(), Steps())
    message = failure.value.args[0]['msg']
    assert 'Debian package python3-ttq-none' in message and 'PyPI package ttq-none' in message


def test_every_error_at_once_and_apply_failures_say_changed():
    class Refusing(module_runner.ModuleSteps):
        def plan(self, module, request, state):
            raise module_runner.Refused(['a: bad', 'b: worse'], extra='kept')

    with pytest.raises(Failed) as failure:
        module_runner.converge(FakeModule(), Refusing())
    assert failure.value.args[0] == {'msg': 'a: bad; b: worse', 'errors': ['a: bad', 'b: worse'],
                                     'extra': 'kept'}

    class Changing(module_runner.ModuleSteps):
        class Plan:
            changed = True

        def plan(self, module, request, state):
            return self.Plan()

        def apply(self, module, plan):
            raise module_runner.ApplyFailed('tap0: setting mtu=9000 failed', diff={})

    with pytest.raises(Failed) as failure:
        module_runner.converge(FakeModule(), Changing())
    assert failure.value.args[0] == {'msg': 'tap0: setting mtu=9000 failed', 'changed': True, 'diff': {}}


def test_check_mode_plans_but_does_not_apply():
    class Changing(module_runner.ModuleSteps):
        class Plan:
            changed = True

        def plan(self, module, request, state):
            return self.Plan()

        def apply(self, module, plan):
            raise AssertionError('applied in check mode')

        def result(self, module, request, plan, applied):
            return {'changed': plan.changed, 'applied': applied}

    module = FakeModule()
    module.check_mode = True
    assert module_runner.converge(module, Changing()) == {'changed': True, 'applied': False}


def test_an_os_error_is_a_clean_failure_that_says_whether_anything_changed():
    class Reading(module_runner.ModuleSteps):
        host_lock = False

        def read(self, module, request):
            raise OSError(11, 'RTM_GETLINK dump: interrupted by concurrent changes')

        def plan(self, module, request, state):
            raise AssertionError('planned without a state')

    with pytest.raises(Failed) as failure:
        module_runner.converge(FakeModule(), Reading())
    result = failure.value.args[0]
    assert 'nothing was changed' in result['msg'] and 'interrupted' in result['msg']
    assert 'changed' not in result

    class Applying(module_runner.ModuleSteps):
        host_lock = False

        class Plan:
            changed = True

        def plan(self, module, request, state):
            return self.Plan()

        def apply(self, module, plan):
            raise OSError(19, 'No such device')

    with pytest.raises(Failed) as failure:
        module_runner.converge(FakeModule(), Applying())
    result = failure.value.args[0]
    assert result['changed'] is True and 'while applying' in result['msg'], result
