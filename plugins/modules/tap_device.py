#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: tap_device
short_description: Create, update and remove tap and tun devices, one or many in one call
version_added: 0.1.0
description:
  - Does the job of C(tunctl -u USER -t tap0) and C(ip tuntap add dev tap0 mode tap user USER)
    for QEMU guests, then sets MTU, link state, bridge and addresses through netlink.
  - Devices are persistent (they survive the process that opened them, as C(ip tuntap) makes them).
  - Converges a single device (O(name)) or a whole list (O(devices)) in one call with one
    netlink dump of links and addresses, so a role can manage hundreds of taps at once.
  - Top-level options are the defaults for every entry of O(devices).
  - The whole request is validated against the host before anything changes; one bad entry
    fails the call and leaves every device as it was.
  - A device whose O(mode) or O(multi_queue) differs from the request is deleted and created
    again (the kernel cannot change them in place); a guest attached to it loses its link.
  - Every device the module creates or manages as present carries the collection's mark, the
    interface alias V(tuntap.qemu:tap) (C(ip link show) prints it as C(alias)). A listed device
    that exists without it (made by hand, or by release 0.2.0) gets it, which counts as a change.
    O(prune) removes only devices that carry the mark.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.attributes.netlink
options:
  name:
    description:
      - Name of one device, at most 15 bytes, without C(/), C(:) or whitespace.
      - Mutually exclusive with O(names) and O(devices).
    type: str
  names:
    description:
      - Several devices that all take the top-level options, by name.
      - Mutually exclusive with O(name) and O(devices).
    type: list
    elements: str
  devices:
    description:
      - Several devices in one call. Each entry takes O(name) and any of the per-device
        options below; what an entry leaves out comes from the top-level option.
      - Names must be unique in the list.
    type: list
    elements: dict
    suboptions:
      name:
        description: Device name.
        type: str
        required: true
      mode:
        description: See the top-level O(mode).
        type: str
        choices: [tap, tun]
      user:
        description: See the top-level O(user).
        type: str
      group:
        description: See the top-level O(group).
        type: str
      multi_queue:
        description: See the top-level O(multi_queue).
        type: bool
      vnet_hdr:
        description: See the top-level O(vnet_hdr).
        type: bool
      mtu:
        description: See the top-level O(mtu).
        type: int
      addresses:
        description: See the top-level O(addresses).
        type: list
        elements: str
      link_state:
        description: See the top-level O(link_state).
        type: str
        choices: [up, down]
      bridge:
        description: See the top-level O(bridge).
        type: str
      state:
        description: See the top-level O(state).
        type: str
        choices: [present, absent]
  mode:
    description:
      - V(tap) for an Ethernet device (what QEMU's C(-netdev tap) needs), V(tun) for an IP-level device.
    type: str
    choices: [tap, tun]
    default: tap
  user:
    description:
      - User (name or numeric id) who may open the device without root, like C(tunctl -u).
      - Left as it is when not given (a new device then has no owner, so only root may open it).
    type: str
  group:
    description:
      - Group (name or numeric id) whose members may open the device without root.
      - Left as it is when not given.
    type: str
  multi_queue:
    description:
      - Create the device with IFF_MULTI_QUEUE (needed for QEMU C(queues=N) with N > 1).
      - Off for a new device and left as it is on an existing one when not given.
    type: bool
  vnet_hdr:
    description:
      - Set IFF_VNET_HDR on the device. QEMU sets this itself when it opens the tap, so
        leave it unset unless a consumer needs it preset.
      - Off for a new device and left as it is on an existing one when not given.
    type: bool
  mtu:
    description: MTU of the device (68-65535). Left as it is when not given.
    type: int
  addresses:
    description:
      - Complete list of addresses of the device in ADDRESS/PREFIX form, such as
        V(192.168.0.1/24) or V(fd00:0:0:1::1/64). Addresses not listed are removed;
        IPv6 link-local addresses are never touched.
      - Left as they are when not given. V([]) removes all.
    type: list
    elements: str
  link_state:
    description: Administrative state of the link.
    type: str
    choices: [up, down]
    default: up
  bridge:
    description:
      - Bridge to enslave the device to; it must exist (see M(tuntap.qemu.bridge_port)).
      - An empty string releases the device from any bridge. Left as it is when not given.
    type: str
  state:
    description: Whether the device exists.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Remove every tap and tun device that carries the collection's mark (see the description)
        and is not named in this call (O(name), O(names) or O(devices)), with its addresses and
        routes, which go with the link. RV(removed) lists them; check mode and diff mode show them.
      - A device without the mark is never removed or changed, whatever its name.
      - A marked device that a process holds open (a running QEMU; found through the C(iff:) lines
        of C(/proc/*/fdinfo) and the device's carrier) is left alone with a warning that names the
        process, and the call does not fail; RV(in_use) lists it.
      - Pass the complete list of the host's taps with it, for example every guest's tap of the plan.
    type: bool
    default: false
    version_added: 0.3.0
notes:
  - Owner, group and IFF_VNET_HDR are set by attaching to the device; that fails with
    C(Device or resource busy) while a process (a running QEMU) holds a single-queue tap open.
  - Run it inside the network namespace to manage, for example with the C(tuntap.qemu.netns) connection.
seealso:
  - module: tuntap.qemu.bridge_port
  - module: tuntap.qemu.ip_forward
'''

EXAMPLES = r'''
- name: A tap for the guest vm1 that user qemu may open, as the host-side gateway of the guest
  tuntap.qemu.tap_device:
    name: tap0
    user: qemu
    addresses:
      - 192.168.0.1/24

- name: 128 taps owned by user ci in bridge br0, in one call
  tuntap.qemu.tap_device:
    user: ci
    bridge: br0
    names: "{{ query('ansible.builtin.sequence', 'start=0 end=127 format=tap%d') }}"

- name: Taps with their own settings
  tuntap.qemu.tap_device:
    user: qemu
    devices:
      - name: tap0
        addresses: [192.168.0.1/24]
      - name: tap1
        addresses: [192.168.1.1/24]
        mtu: 9000
      - name: tap9
        state: absent

- name: Remove a tap
  tuntap.qemu.tap_device:
    name: tap0
    state: absent

- name: Exactly the taps of these guests; the collection's other taps go, the admin's stay
  tuntap.qemu.tap_device:
    names: [tap0, tap1]
    prune: true
'''

RETURN = r'''
devices:
  description: The devices of the request that exist after the call (predicted in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Device name.
      type: str
      sample: tap0
    ifindex:
      description: Interface index (null in check mode for a device not created yet).
      type: int
      sample: 7
    kind:
      description: Link kind as the kernel reports it (C(tun) for tap and tun devices).
      type: str
      sample: tun
    mode:
      description: V(tap) or V(tun).
      type: str
      sample: tap
    mac:
      description: MAC address (taps).
      type: str
      sample: 6a:3f:0c:11:22:33
    owner:
      description: Owner uid, null when none.
      type: int
      sample: 1000
    group:
      description: Group gid, null when none.
      type: int
      sample: null
    multi_queue:
      description: Whether IFF_MULTI_QUEUE is set.
      type: bool
    vnet_hdr:
      description: Whether IFF_VNET_HDR is set.
      type: bool
    persist:
      description: Whether the device is persistent.
      type: bool
    mtu:
      description: MTU.
      type: int
      sample: 1500
    state:
      description: Administrative state, V(up) or V(down).
      type: str
      sample: up
    operstate:
      description: Operational state (C(down) for a tap that no process holds open).
      type: str
      sample: down
    master:
      description: Bridge the device is a port of, or null.
      type: str
      sample: br0
    addresses:
      description: Addresses other than IPv6 link-local, as ADDRESS/PREFIX.
      type: list
      elements: str
      sample: [192.168.0.1/24]
    alias:
      description: The interface alias, the collection's mark V(tuntap.qemu:tap) on its devices.
      type: str
      sample: tuntap.qemu:tap
      version_added: 0.3.0
    carrier:
      description: Whether a process (a running QEMU) holds the device open.
      type: bool
      version_added: 0.3.0
removed:
  description: Devices the call deleted (O(state=absent), O(prune)); in check mode, those it would delete.
  returned: always
  type: list
  elements: str
  sample: [tap3]
  version_added: 0.3.0
in_use:
  description: Marked devices that O(prune) left alone because a process holds them open.
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  contains:
    name:
      description: Device name.
      type: str
      sample: tap4
    holders:
      description: The processes in this network namespace that hold it open (empty when only its carrier tells).
      type: list
      elements: dict
      sample: [{pid: 4242, comm: qemu-system-x86}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._links.converge import TapSteps


def main():
    per_device = dict(
        mode=dict(type='str', choices=['tap', 'tun']),
        user=dict(type='str'),
        group=dict(type='str'),
        multi_queue=dict(type='bool'),
        vnet_hdr=dict(type='bool'),
        mtu=dict(type='int'),
        addresses=dict(type='list', elements='str'),
        link_state=dict(type='str', choices=['up', 'down']),
        bridge=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent']),
    )
    argument_spec = dict(per_device, name=dict(type='str'), prune=dict(type='bool', default=False),
                         names=dict(type='list', elements='str'),
                         devices=dict(type='list', elements='dict',
                                      options=dict(per_device, name=dict(type='str', required=True))))
    argument_spec['mode'] = dict(per_device['mode'], default='tap')
    argument_spec['link_state'] = dict(per_device['link_state'], default='up')
    argument_spec['state'] = dict(per_device['state'], default='present')
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('name', 'names', 'devices')],
                           required_one_of=[('name', 'names', 'devices')])
    module_runner.run(module, TapSteps())


if __name__ == '__main__':
    main()
