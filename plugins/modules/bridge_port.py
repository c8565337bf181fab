#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: bridge_port
short_description: A Linux bridge and its ports (taps, veths, the uplink)
version_added: 0.1.0
description:
  - Creates, updates and removes a Linux bridge through netlink, with its STP setting,
    forward delay, MTU, link state and addresses, and adds or removes its ports in the same call.
  - Ports must exist already; a port that belongs to another bridge is only moved when
    O(move_ports=true).
  - The whole request is validated against the host before anything changes; one bad port
    fails the call and leaves the bridge and every port as they were.
  - With O(uplink), the uplink becomes a port and its addresses and routes move to the bridge
    in the same call (the bridged_lan topology), in an order that keeps the host reachable -
    the bridge gets the addresses (and, when it is created, the uplink's MAC) first, then the
    uplink is enslaved, routes move with a netlink replace, and the uplink's addresses go last.
  - The bridge carries the collection's mark, the interface alias V(tuntap.qemu:bridge), or
    V(tuntap.qemu:bridge uplink=eth0) once it took over the uplink V(eth0). An existing bridge
    managed here without it gets it, which counts as a change. O(prune) removes only bridges
    that carry the mark; ports are never marked.
  - Removing a bridge whose mark names an uplink (O(state=absent), O(prune)) gives the uplink
    its addresses and routes back in the same call, in an order that keeps the host reachable -
    the uplink gets the addresses first, leaves the bridge, the routes move to it with a netlink
    replace, and the bridge goes last with its addresses. An uplink that no longer exists is an
    error and nothing is changed.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.attributes.netlink
options:
  name:
    description:
      - Bridge name, at most 15 bytes, without C(/), C(:) or whitespace.
      - Required unless O(state=absent) with O(prune=true), which removes every bridge of ours.
    type: str
  state:
    description:
      - V(present) creates or updates the bridge; V(absent) deletes it (its ports are released,
        not deleted).
    type: str
    choices: [present, absent]
    default: present
  prune:
    description:
      - Remove every bridge that carries the collection's mark (see the description) other
        than O(name); their ports are released, not deleted. Without O(name) (only with
        O(state=absent)), every bridge of ours goes - the converge of a host whose plan
        holds no bridge.
      - A bridge without the mark is never removed or changed, whatever its name.
      - RV(removed) lists the removed bridges; check mode and diff mode show them.
    type: bool
    default: false
    version_added: 0.3.0
  ports:
    description:
      - Interfaces that must be ports of the bridge. Other ports stay unless O(exclusive=true).
      - Left as they are when not given.
    type: list
    elements: str
  isolated_ports:
    description:
      - The ports of O(ports) that are isolated (the kernel's bridge port flag C(BR_ISOLATED),
        C(ip link set dev PORT type bridge_slave isolated on), libvirt's C(<port isolated='yes'/>)) -
        an isolated port forwards to no other isolated port of the bridge, only to the bridge
        itself (the host) and to the ports that are not isolated (the uplink, other guests).
      - The other ports of O(ports) are not isolated; a port of the bridge not in O(ports) keeps
        its isolation as it is. V([]) ends the isolation of every port of O(ports).
      - Left as they are when not given (a port that joins the bridge is not isolated).
      - A name that is not in O(ports), or that is O(uplink), is an error and nothing is changed.
      - Check mode and diff mode show the change (C(isolated_ports) of the bridge).
    type: list
    elements: str
    version_added: 0.3.0
  exclusive:
    description: Release every port of the bridge that is not listed in O(ports).
    type: bool
    default: false
  move_ports:
    description:
      - Take a listed port that is a port of another bridge. Without it that is an error.
    type: bool
    default: false
  stp:
    description: Kernel spanning tree protocol on the bridge. Left as it is when not given (off on a new bridge).
    type: bool
  forward_delay:
    description:
      - Forward delay in seconds (0-30; at least 2 with O(stp=true)), like Debian's C(bridge_fd).
      - Left as it is when not given (15 on a new bridge).
    type: int
  mtu:
    description: MTU of the bridge (68-65535). Left as it is when not given.
    type: int
  link_state:
    description: Administrative state of the bridge.
    type: str
    choices: [up, down]
    default: up
  uplink:
    description:
      - A port (added to O(ports) if missing) whose IPv4 and IPv6 addresses and routes move to
        the bridge, such as V(eth0) in the bridged_lan topology. Routes the kernel makes on its
        own (for addresses, from router advertisements) are not moved; they come back on the bridge.
      - On a LAN whose router advertises an IPv6 prefix, the uplink's SLAAC addresses, their
        temporary addresses and the routes learnt from the advertisements are the kernel's - they
        are not moved, checked or persisted. The uplink lets go of them (a port no longer hears the
        router), the bridge sends a router solicitation and the kernel makes its own from the answer;
        when the bridge goes, the uplink solicits and gets them back the same way.
      - Once the uplink is a port without addresses, nothing more is moved.
      - With O(addresses), the takeover first checks that the uplink (or, once it is done, the
        bridge) holds exactly these addresses, that its IPv4 default route is via O(gateway)
        (or that it has none without O(gateway)), and that no other configured route goes
        through it. Anything else would move at runtime but not come back from a configuration
        written from the same inventory, so it is an error and nothing is changed.
    type: str
  gateway:
    description:
      - With O(uplink) and O(addresses), the IPv4 router of the uplink's default route, as the
        caller persists it (Debian's C(gateway) line).
    type: str
    version_added: 0.2.0
  readdress:
    description:
      - With O(uplink) and O(addresses), change the host's LAN address on purpose - the bridge
        takes O(addresses) and a default route via O(gateway) instead of what the uplink holds,
        whose addresses are removed.
      - Over SSH to the old address this cuts the connection.
    type: bool
    default: false
    version_added: 0.2.0
  dhcp:
    description:
      - With O(uplink), the uplink's address is a DHCP lease (the bridged_lan inventory's
        C(tuntap_qemu_uplink_address=dhcp)). The takeover moves the lease's addresses with their
        remaining lifetimes (they stay dynamic) and its routes as usual, and then the DHCP
        client - the uplink's lease file is copied to the bridge's (C(interface "eth0") becomes
        C(interface "br0")), the uplink's client is stopped by its pid (SIGTERM, after checking
        its command line), and the dhclient of Debian 12's ifupdown for C(iface BR inet dhcp) is
        started on the bridge (it returns once bound, within 60 s). The bridge has the uplink's
        MAC, so the DHCP server gives it the same lease; the address stays on the host all along.
      - The bridge's mark says so (V(tuntap.qemu:bridge uplink=eth0 dhcp)), and its removal
        (O(state=absent), O(prune)) moves the addresses and routes back and then the client,
        the same way, to the uplink.
      - Nothing changes once the client runs on the bridge and none on the uplink. Check mode
        and diff mode show the client's move (C(dhcp_client) in the diff).
      - O(addresses), O(gateway) and O(readdress) are not used with it (the lease gives them).
      - "The paths are Debian's: C(dhclient) on PATH (or C(/sbin)), its pid files in C(/run),
        its lease files in C(/var/lib/dhcp). The module's environment may move them (tests do):
        E(TUNTAP_QEMU_DHCLIENT) (the program), E(TUNTAP_QEMU_DHCLIENT_SCRIPT) (passed as C(-sf)),
        E(TUNTAP_QEMU_DHCP_RUN_DIR), E(TUNTAP_QEMU_DHCP_LEASE_DIR)."
    type: bool
    default: false
    version_added: 0.3.0
  armed_change:
    description:
      - The id of the rollback armed for this change with M(tuntap.qemu.confirmed_change)
        (its C(id) with O(tuntap.qemu.confirmed_change#module:state=armed)), for an uplink
        change that may cut the controller off (the bridged_lan takeover, its give-back,
        O(readdress)).
      - The change is made only while that rollback is pending. Once its deadline has passed -
        on a slow host, the tasks between arming and this one took the whole timeout - the
        rollback ran (or runs) on the host as it was, and a change made after it would stand
        with nothing to undo it; so the call fails with nothing changed, naming the rollback.
        It fails the same way for an unknown or an already confirmed id.
      - Checked under the host lock, which the rollback takes too, only when the call changes
        something.
    type: str
    version_added: 0.3.0
  rollback_dir:
    description: The folder of the rollbacks that O(armed_change) names (M(tuntap.qemu.confirmed_change)'s O(tuntap.qemu.confirmed_change#module:runtime_dir)).
    type: path
    default: /run/tuntap-qemu-rollback
    version_added: 0.3.0
  addresses:
    description:
      - Complete list of addresses of the bridge in ADDRESS/PREFIX form, such as the guests'
        gateway V(192.168.0.1/24). Addresses not listed are removed; IPv6 link-local addresses
        are never touched. Left as they are when not given.
    type: list
    elements: str
notes:
  - Ports keep their own link state; bring taps up with M(tuntap.qemu.tap_device).
  - Run it inside the network namespace to manage, for example with the C(tuntap.qemu.netns) connection.
seealso:
  - module: tuntap.qemu.tap_device
'''

EXAMPLES = r'''
- name: Bridge br0 that holds the guests' gateway address and all guest taps
  tuntap.qemu.bridge_port:
    name: br0
    addresses: [192.168.0.1/24]
    forward_delay: 0
    ports: [tap0, tap1]

- name: Exactly these ports, nothing else
  tuntap.qemu.bridge_port:
    name: br0
    ports: [tap0]
    exclusive: true

- name: Move tap5 from br1 into br0
  tuntap.qemu.bridge_port:
    name: br0
    ports: [tap5]
    move_ports: true

- name: Bridged LAN - eth0 and the taps in br0, the host's address and routes move to br0
  tuntap.qemu.bridge_port:
    name: br0
    uplink: eth0
    ports: [tap0, tap1]
    forward_delay: 0

- name: Bridged LAN that first checks the host holds what the inventory persists
  tuntap.qemu.bridge_port:
    name: br0
    uplink: eth0
    addresses: [10.0.0.11/24]
    gateway: 10.0.0.1
    ports: [tap0, tap1]
    forward_delay: 0

- name: Bridged LAN on a DHCP uplink - the lease and the DHCP client move from eth0 to br0
  tuntap.qemu.bridge_port:
    name: br0
    uplink: eth0
    dhcp: true
    ports: [tap0, tap1]
    forward_delay: 0

- name: Guests on br0 that reach the host and tap0, never each other
  tuntap.qemu.bridge_port:
    name: br0
    addresses: [192.168.0.1/24]
    ports: [tap0, tap1, tap2]
    isolated_ports: [tap1, tap2]

- name: Remove the bridge (ports are released)
  tuntap.qemu.bridge_port:
    name: br0
    state: absent

- name: Bridge br0, and no other bridge of the collection (an admin's bridges stay)
  tuntap.qemu.bridge_port:
    name: br0
    ports: [tap0]
    prune: true

- name: No bridge of the collection at all (leaving bridged_lan - eth0 gets its addresses back)
  tuntap.qemu.bridge_port:
    state: absent
    prune: true
'''

RETURN = r'''
devices:
  description: The bridge after the call (predicted in check mode), as a one-element list; empty when absent.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Bridge name.
      type: str
      sample: br0
    ifindex:
      description: Interface index (null in check mode for a bridge not created yet).
      type: int
    mac:
      description: MAC address of the bridge.
      type: str
    stp:
      description: Whether STP is on.
      type: bool
    forward_delay:
      description: Forward delay in seconds.
      type: int
    mtu:
      description: MTU.
      type: int
    state:
      description: Administrative state.
      type: str
      sample: up
    addresses:
      description: Addresses other than IPv6 link-local.
      type: list
      elements: str
      sample: [192.168.0.1/24]
    dynamic:
      description:
        - The addresses with a finite lifetime (such as a DHCP lease), each with its remaining
          C(valid) and C(preferred) lifetimes in seconds; only when the bridge holds such an address.
      type: dict
      sample: {10.44.0.50/24: {valid: 3599, preferred: 3599}}
      version_added: 0.3.0
    ports:
      description: Names of the ports.
      type: list
      elements: str
      sample: [tap0, tap1]
    isolated_ports:
      description: Names of the ports that are isolated (see O(isolated_ports)).
      type: list
      elements: str
      sample: [tap1]
      version_added: 0.3.0
    alias:
      description: The interface alias, the collection's mark.
      type: str
      sample: tuntap.qemu:bridge uplink=eth0
      version_added: 0.3.0
removed:
  description: Bridges the call deleted (O(state=absent), O(prune)); in check mode, those it would delete.
  returned: always
  type: list
  elements: str
  sample: [br1]
  version_added: 0.3.0
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._links.converge import BridgeSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            prune=dict(type='bool', default=False),
            ports=dict(type='list', elements='str'),
            isolated_ports=dict(type='list', elements='str'),
            exclusive=dict(type='bool', default=False),
            move_ports=dict(type='bool', default=False),
            stp=dict(type='bool'),
            forward_delay=dict(type='int'),
            mtu=dict(type='int'),
            link_state=dict(type='str', choices=['up', 'down'], default='up'),
            addresses=dict(type='list', elements='str'),
            uplink=dict(type='str'),
            gateway=dict(type='str'),
            readdress=dict(type='bool', default=False),
            dhcp=dict(type='bool', default=False),
            armed_change=dict(type='str'),
            rollback_dir=dict(type='path', default='/run/tuntap-qemu-rollback'),
        ),
        supports_check_mode=True,
        required_if=[('state', 'present', ['name']), ('prune', False, ['name'])],
    )
    module_runner.run(module, BridgeSteps())


if __name__ == '__main__':
    main()
