#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vde_switch
short_description: One VDE switch per host, with its tap towards the host, for QEMU guests
version_added: 0.3.0
description:
  - Runs one C(vde_switch) (Debian's C(vde2)) per host, or per network namespace, attached to
    the tap O(tap) that carries the host side address (made by M(tuntap.qemu.tap_device)). QEMU
    guests join the switch with C(-netdev vde,sock=SOCKET) (M(tuntap.qemu.qemu_guest)
    O(tuntap.qemu.qemu_guest#module:nics[].vde)), so that one tap stands for many guests - the classic
    guide's alternative to bridging.
  - The switch runs daemonized with a pidfile (C(--daemon --pidfile)); it binds its control
    socket before it forks, so the socket is there when the start returns. A pid is ours only
    when C(/proc/PID/cmdline) is a C(vde_switch) with our pidfile; a stale pidfile or a
    recycled pid is never signalled.
  - A running switch whose command line differs from the request (O(tap), O(socket),
    O(group), O(mode)) is restarted; when nothing differs nothing happens.
  - The tap must exist and be a tap that no other process holds - else the module fails
    before anything changes (C(vde_switch) as root would make a tap of its own that nothing
    configures).
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
options:
  state:
    description:
      - V(present) runs the switch on O(tap); V(absent) stops our switch (its sockets, socket
        folder and pidfile go) and removes our unit.
    type: str
    choices: [present, absent]
    default: present
  tap:
    description: The switch's tap towards the host, such as V(vde0). Required with O(state=present).
    type: str
  socket:
    description:
      - The switch's socket folder (C(vde_switch --sock)); guests connect to its C(ctl) socket.
      - Default O(runtime_dir)/O(tap)C(.ctl), such as C(/run/tuntap-qemu/vde/vde0.ctl).
    type: path
  group:
    description:
      - The group that owns the sockets and the socket folder (C(--group)), so that its members
        (a guest's O(tuntap.qemu.qemu_guest#module:run_as) user) may connect. It must exist.
      - Default none - the group of root.
    type: str
  mode:
    description:
      - Octal mode of the sockets (C(--mode)); the socket folder gets it with the search bit
        added for each class that may read or write (C(--dirmode)), since each guest's QEMU
        makes its own socket in that folder.
    type: str
    default: '0770'
  service:
    description:
      - V(systemd) - the unit C(tuntap-qemu-vde.service) in O(unit_dir) (C(Type=forking),
        C(After=networking.service), since ifupdown makes the tap at boot; C(WantedBy=multi-user.target)),
        enabled and started; V(process) - the daemonized switch alone; V(auto) - systemd when
        PID 1 is systemd and the module runs in its network namespace, else process.
    type: str
    choices: [auto, systemd, process]
    default: auto
  unit_dir:
    description: Folder of the systemd unit.
    type: path
    default: /etc/systemd/system
  runtime_dir:
    description:
      - Folder of the pidfile C(vde_switch.pid) and the management socket C(vde_switch.mgmt)
        (mode 0600, root only; C(port/print) there lists the switch's ports).
    type: path
    default: /run/tuntap-qemu/vde
notes:
  - A restart of the switch (a changed option) cuts off the guests connected to it - QEMU's vde
    backend does not reconnect; restart them (M(tuntap.qemu.qemu_guest) O(tuntap.qemu.qemu_guest#module:state=stopped), then V(running)).
  - Inside a network namespace (C(ip netns exec), the C(tuntap.qemu.netns) connection) the switch
    attaches that namespace's tap; O(service=auto) then runs it as a process.
  - The unit and a process of ours are marked as ours - the unit by its C(# Managed by tuntap.qemu)
    header (a unit of that name without it is refused), the process by its pidfile and command line.
requirements:
  - C(vde_switch) on the managed node (Debian package C(vde2)).
  - Linux, root (the switch opens the tap through C(/dev/net/tun)).
seealso:
  - module: tuntap.qemu.tap_device
  - module: tuntap.qemu.qemu_guest
'''

EXAMPLES = r'''
- name: The host side of the VDE network on vde0
  tuntap.qemu.tap_device:
    name: vde0
    addresses: [192.168.20.1/24]

- name: The switch on vde0; members of kvm may connect guests
  tuntap.qemu.vde_switch:
    tap: vde0
    group: kvm

- name: A guest on the switch
  tuntap.qemu.qemu_guest:
    name: vm12
    nics:
      - vde: /run/tuntap-qemu/vde/vde0.ctl
    kernel: /var/lib/guests/vmlinuz

- name: No switch on this host
  tuntap.qemu.vde_switch:
    state: absent
'''

RETURN = r'''
action:
  description: What happened to the switch.
  returned: success
  type: str
  choices: [none, started, restarted, stopped]
  sample: started
pid:
  description: The pid of our switch; null when none runs (and in check mode before a start).
  returned: success
  type: int
  sample: 4242
socket:
  description: The socket folder guests connect to; null with O(state=absent).
  returned: success
  type: str
  sample: /run/tuntap-qemu/vde/vde0.ctl
management_socket:
  description: The switch's management socket; null with O(state=absent).
  returned: success
  type: str
  sample: /run/tuntap-qemu/vde/vde_switch.mgmt
service:
  description: How the switch runs here, V(systemd) or V(process).
  returned: success
  type: str
  sample: process
argv:
  description: The switch's command line; empty with O(state=absent).
  returned: success
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._vde.switch_module import VdeSwitchSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            tap=dict(type='str'),
            socket=dict(type='path'),
            group=dict(type='str'),
            mode=dict(type='str', default='0770'),
            service=dict(type='str', choices=['auto', 'systemd', 'process'], default='auto'),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            runtime_dir=dict(type='path', default='/run/tuntap-qemu/vde'),
        ),
        required_if=[('state', 'present', ('tap',))],
        supports_check_mode=True,
    )
    module_runner.run(module, VdeSwitchSteps())


if __name__ == '__main__':
    main()
