# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12: bad input of the guests' DHCP and port forwards is refused with nothing changed.

The lab's hv3 (bridged_nat, DHCP guests vm5 and vm6, vm6 forwarding 8006 to its port 80):
- inventories the fleet plan refuses - two forwards of one host port, a dynamic range over a
  planned address, a forward to a port out of range - fail before any host is touched: the
  fresh hypervisor's links, addresses, routes, rules and files stay byte-identical;
- converged, with a foreign DHCP server on its bridge (a socket on UDP 67 bound to br0, ended
  by its pid): a new guest in the inventory is refused before the links change, naming the
  process; nothing changes (no tap for the new guest, the DHCP files as they were); without
  the foreign server the same inventory converges.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_reboot  # noqa: E402  pylint: disable=wrong-import-position
from test_reboot import tuntap_lab  # noqa: E402  pylint: disable=wrong-import-position

# A socket like another DHCP server's: bound to br0 on UDP 67 (SO_BINDTODEVICE), forked into
# the background with its pid in a file, sleeping until the test ends it by that pid.
FOREIGN_DHCP = '''
import os, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'br0\\0')
sock.bind(('0.0.0.0', 67))
pid = os.fork()
if pid:
    with open(sys.argv[1], 'w') as handle:
        handle.write('%d\\n' % pid)
    sys.exit(0)
os.setsid()
time.sleep(600)
'''


def _inventory(lab):
    with open(lab.inventory) as handle:
        return json.load(handle)


def _write_inventory(lab, inventory):
    with open(lab.inventory, 'w') as handle:
        json.dump(inventory, handle, indent=2)


def _hv3(inventory):
    return inventory['all']['children']['hypervisors']['hosts']['hv3']


def _end_foreign(pid, pidfile):
    """End the foreign server by its pid, only if it is still the python3 started with pidfile."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            args = handle.read().split(b'\0')
    except OSError:
        return
    if os.path.basename(args[0]) == b'python3' and pidfile.encode() in args:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _state(lab):
    return (test_reboot.network_state(lab.hypervisors['hv3']['namespace']), test_reboot.files_state(lab, 'hv3'))


@pytest.fixture(scope='module')
def lab():
    if os.geteuid() != 0:
        pytest.fail('the lab creates network namespaces: run the e2e tests as root')
    lab = tuntap_lab.Lab('ttqs%d-' % (os.getpid() % 100000), only=['hv3'])
    try:
        lab.up('/usr/bin/python3', tuntap_lab.build_guest.build_guest())
        yield lab
    finally:
        lab.down()


def _duplicate_forward(host):
    host['tuntap_qemu_guests'][0]['forwards'] = [{'port': 8006, 'guest_port': 22}]


def _range_over_a_guest(host):
    host['tuntap_qemu_dhcp_range'] = '192.168.5.5-192.168.5.10'


def _port_out_of_range(host):
    host['tuntap_qemu_guests'][1]['forwards'] = [{'port': 70000, 'guest_port': 80}]


@pytest.mark.parametrize('change, error', [
    (_duplicate_forward, 'hv3: tuntap_qemu_guests[1].forwards[0]: tcp port 8006 of this host is forwarded already '
                         'by tuntap_qemu_guests[0].forwards[0] (vm5); one host port goes to one guest'),
    (_range_over_a_guest, 'hv3: tuntap_qemu_dhcp_range: 192.168.5.5-192.168.5.10 holds tuntap_qemu_guests[0].address '
                          '192.168.5.10 (vm5); a dynamic range must leave the planned addresses out'),
    (_port_out_of_range, 'hv3: tuntap_qemu_guests[1].forwards[0].port: 70000 is not a port (1-65535)'),
])
def test_the_fleet_plan_refuses_bad_forwards_and_ranges_and_nothing_changes(lab, change, error):
    right = _inventory(lab)
    wrong = json.loads(json.dumps(right))
    change(_hv3(wrong))
    before = _state(lab)
    _write_inventory(lab, wrong)
    try:
        rc, changed = lab.converge('site.yml')
    finally:
        _write_inventory(lab, right)
    output = lab.last_output
    assert rc != 0 and changed == 0, output
    assert error in output, output
    after = _state(lab)
    assert after[0] == before[0], test_reboot.state_diff(before[0], after[0])
    assert after[1] == before[1], (before[1], after[1])


def test_a_foreign_dhcp_server_on_the_bridge_is_refused_before_anything_changes(lab):
    rc, _changed = lab.converge('site.yml')
    assert rc == 0, lab.last_output
    lab.guest_reports()     # the guests are done printing: their serial logs stay as they are
    ns = lab.hypervisors['hv3']['namespace']
    pidfile = os.path.join(lab.state_dir, 'foreign-dhcp.pid')
    right = _inventory(lab)
    more = json.loads(json.dumps(right))
    guests = _hv3(more)['tuntap_qemu_guests']
    guests.append(dict(guests[0], name='vm9', address='192.168.5.19/24'))
    subprocess.run(['ip', 'netns', 'exec', ns, '/usr/bin/python3', '-c', FOREIGN_DHCP, pidfile],
                   check=True, env=tuntap_lab.ENV)
    with open(pidfile) as handle:
        pid = int(handle.read())
    try:
        before = _state(lab)
        _write_inventory(lab, more)
        rc, changed = lab.converge('site.yml')
        output = lab.last_output
        assert rc != 0 and changed == 0, output
        assert 'process %d (python3' % pid in output, output
        assert 'our dnsmasq would clash with it' in output, output
        after = _state(lab)
        assert after[0] == before[0], test_reboot.state_diff(before[0], after[0])
        assert after[1] == before[1], (before[1], after[1])
        assert 'tap2' not in after[0]['links']
    finally:
        _end_foreign(pid, pidfile)
    rc, _changed = lab.converge('site.yml')
    assert rc == 0, lab.last_output
    state = test_reboot.network_state(ns)
    assert 'tap2' in state['links']
    _write_inventory(lab, right)
