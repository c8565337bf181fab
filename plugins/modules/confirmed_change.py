#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: confirmed_change
short_description: A bridged LAN change that rolls itself back unless confirmed
version_added: 0.3.0
description:
  - Like C(netplan try), for the uplink takeover of M(tuntap.qemu.bridge_port) (the bridged_lan
    topology, in and out). Before the change, O(state=armed) records what a rollback must
    restore - the uplink's and the bridge's addresses (with the remaining lifetimes of
    addresses that are not permanent), MAC, ports, mark and configured IPv4 and IPv6 routes,
    their DHCP clients and O(files) - and starts a timer on the host. Unless
    O(state=confirmed) comes within O(timeout) seconds, the host restores that state and those
    files by itself, independent of the SSH session that made the change.
  - The timer is a transient systemd timer (C(systemd-run), unit
    C(tuntap-qemu-rollback-<id>)) where systemd is PID 1 and the module runs in its network
    namespace; elsewhere (containers, the network namespaces of the lab) a detached process
    that sleeps until the deadline, in the module's network namespace. Either runs a helper
    script written into the rollback folder C(<runtime_dir>/<id>/) with plain C(ip) commands.
  - The rollback is right whatever part of the change had happened (none, half, all) - its
    steps are idempotent. Undoing a takeover, the uplink gets its addresses back (IPv6 without
    duplicate address detection), leaves the bridge, its routes are replaced back onto it and
    the bridge loses its addresses and is deleted if it did not exist before. Undoing a
    release, the bridge is created again with its recorded MAC and mark, takes its addresses,
    the uplink becomes its port again, the routes move back to it and the former ports join
    again. The DHCP client swaps back the same way (stopped by its pidfile after its command
    line was checked, started again with its recorded arguments). Then the files are written
    back byte for byte with their mode and owner, or removed when they did not exist.
  - The rollback writes C(report.json) (when, why, each step and its result) into the folder
    and a one-line summary to its standard error (the journal, or C(helper.log) in the folder).
  - O(state=armed) arms only when the change is pending; otherwise it reports RV(armed=false)
    and changes nothing, so a second converge reports no change. A change of the same uplink
    that is armed and neither confirmed nor rolled back yet makes it fail, arming nothing (two
    rollbacks of one uplink would undo each other).
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.attributes.netlink
options:
  state:
    description:
      - V(armed) arms the rollback before the change; V(confirmed) cancels it after the change
        (over the new path); V(status) says whether a change was rolled back or confirmed and
        never changes or fails for a rolled-back change.
    type: str
    choices: [armed, confirmed, status]
    default: armed
  uplink:
    description:
      - The uplink whose takeover is about to change, such as V(eth0). Required with O(state=armed).
    type: str
  bridge:
    description:
      - The bridge that takes the uplink over (O(takeover=true)). With O(takeover=false), the
        bridge of ours whose mark names the uplink (C(tuntap.qemu:bridge uplink=eth0)) is the one
        that gives it back, whatever its name. Required with O(state=armed).
    type: str
  takeover:
    description:
      - V(true) - the change makes the uplink a port of O(bridge) (entering bridged_lan); it is
        pending when the uplink is not a port of O(bridge).
      - V(false) - the change takes the uplink out of the bridge of ours that took it over
        (leaving bridged_lan); it is pending when the uplink is a port of such a bridge.
      - Required with O(state=armed).
    type: bool
  timeout:
    description: Seconds until the rollback runs unless confirmed (at least 5).
    type: int
    default: 60
  files:
    description:
      - Absolute paths of files the change writes (interfaces.d stanzas, say), restored byte for
        byte with mode and owner by a rollback; a file that did not exist is removed.
    type: list
    elements: str
    default: []
  id:
    description: The change to confirm or look at, RV(id) of O(state=armed). Required with O(state=confirmed) and O(state=status).
    type: str
  runtime_dir:
    description:
      - Folder of the rollback folders (one per change, named by its id).
      - Not under the guests' runtime root (C(/run/tuntap-qemu), one folder per guest), where a
        guest could have its name.
    type: path
    default: /run/tuntap-qemu-rollback
notes:
  - Run it inside the network namespace to manage, for example with the C(tuntap.qemu.netns)
    connection; the rollback then runs in that namespace too.
  - Confirm over the new path (C(meta reset_connection) first); when the host is unreachable,
    wait for the rollback (C(wait_for_connection)) and read O(state=status).
  - O(state=confirmed) after a rollback fails with a message that says when and why it was
    rolled back and lists its steps.
seealso:
  - module: tuntap.qemu.bridge_port
'''

EXAMPLES = r'''
- name: Arm a rollback of the takeover of eth0 by br0 and its interfaces.d stanza
  tuntap.qemu.confirmed_change:
    uplink: eth0
    bridge: br0
    takeover: true
    timeout: 60
    files: [/etc/network/interfaces.d/tuntap-qemu-br0]
  register: armed

- name: The takeover
  tuntap.qemu.bridge_port:
    name: br0
    uplink: eth0
    forward_delay: 0

- name: Reconnect over the new path
  ansible.builtin.meta: reset_connection

- name: Confirm (when the host is still reachable)
  tuntap.qemu.confirmed_change:
    state: confirmed
    id: "{{ armed.id }}"
  when: armed.armed

- name: What happened to a change
  tuntap.qemu.confirmed_change:
    state: status
    id: "{{ armed.id }}"
  register: change
'''

RETURN = r'''
armed:
  description: Whether a rollback was armed (false when nothing was pending, and in check mode).
  returned: state=armed
  type: bool
id:
  description: The change's id (null when nothing was armed).
  returned: always
  type: str
  sample: 20261201T150500-a1b2c3
timeout:
  description: Seconds from arming to the rollback.
  returned: state=armed or state=status
  type: int
  sample: 60
deadline:
  description: When the rollback runs unless confirmed (epoch seconds; null when nothing was armed).
  returned: state=armed or state=status
  type: float
mechanism:
  description: The timer, V(systemd-timer) or V(process) (in check mode, the one it would use; null when nothing is pending).
  returned: state=armed or state=status
  type: str
  sample: process
rollback:
  description: The planned rollback steps as text lines, also in check mode.
  returned: state=armed or state=status
  type: list
  elements: str
  sample: ["1. eth0 gets 10.0.0.2/24", "2. eth0 is up", "3. eth0 leaves br0"]
bridge:
  description: The bridge of the change (with O(takeover=false), the marked bridge that took the uplink over).
  returned: state=armed
  type: str
  sample: br0
folder:
  description: The rollback folder.
  returned: when armed
  type: str
  sample: /run/tuntap-qemu-rollback/20261201T150500-a1b2c3
confirmed:
  description: Whether the change was confirmed.
  returned: state=confirmed or state=status
  type: bool
rolled_back:
  description: Whether the rollback ran (also in the failure of O(state=confirmed)).
  returned: state=confirmed or state=status
  type: bool
report:
  description:
    - The rollback's report (empty unless it ran) - C(when), C(at) (epoch), C(reason) (such as
      C(not confirmed within 60 s)), C(ok), C(summary) (the one line the rollback printed), and
      C(steps), each with C(text), C(kind), C(result) (C(ok), C(done already) or C(failed)) and
      C(detail).
    - O(state=status) waits a few seconds for the report of a rollback that is running.
  returned: state=confirmed or state=status
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._confirm.change_module import ConfirmedChangeSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['armed', 'confirmed', 'status'], default='armed'),
            uplink=dict(type='str'),
            bridge=dict(type='str'),
            takeover=dict(type='bool'),
            timeout=dict(type='int', default=60),
            files=dict(type='list', elements='str', default=[]),
            id=dict(type='str'),
            runtime_dir=dict(type='path', default='/run/tuntap-qemu-rollback'),
        ),
        supports_check_mode=True,
        required_if=[('state', 'armed', ['uplink', 'bridge', 'takeover']),
                     ('state', 'confirmed', ['id']), ('state', 'status', ['id'])],
    )
    module_runner.run(module, ConfirmedChangeSteps(module.params['state']))


if __name__ == '__main__':
    main()
