#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: uplink_info
short_description: The host's uplink as it is, checked against what the inventory says
version_added: 0.2.0
description:
  - Reads the addresses and routes of the uplink, or of the bridge that holds them once the
    bridged LAN takeover moved them there (the uplink is then a port without addresses of its
    own), and returns them. Changes nothing.
  - With O(addresses) and O(gateway), fails when the host does not hold them, naming what it
    holds instead. The topology roles run it before any other change, so an inventory whose
    uplink address is not the host's real one is refused before it can be persisted - a
    bridged_lan host would otherwise come up on the wrong subnet at its next boot.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.attributes.netlink
options:
  name:
    description: The uplink, such as V(eth0).
    type: str
    required: true
  bridge:
    description: A bridge that may hold the uplink's addresses already (bridged_lan), such as V(br0).
    type: str
  addresses:
    description: Addresses (ADDRESS/PREFIX) the uplink or its bridge must hold.
    type: list
    elements: str
  gateway:
    description: The IPv4 router its default route must go through.
    type: str
  exact:
    description:
      - The uplink must hold exactly O(addresses), have its IPv4 default route via O(gateway)
        or none without it, and no other configured route - what the bridged LAN takeover
        moves must be what is persisted from the inventory.
    type: bool
    default: false
  dhcp:
    description:
      - The uplink's address is a DHCP lease (C(tuntap_qemu_uplink_address=dhcp)) - check that
        the uplink, or O(bridge) once the takeover moved it there, holds a dynamic IPv4 address
        (one with a finite lifetime) and that a DHCP client (dhclient, dhcpcd, udhcpc) of this
        network namespace runs on that link. O(addresses) and O(gateway) are not given then.
      - Without it, O(exact) refuses an uplink whose address is a lease or that has a DHCP
        client running, naming the lease and the client - the takeover would make a static
        copy of a lease.
    type: bool
    default: false
    version_added: 0.3.0
  hint:
    description: Text appended to a mismatch error, such as which inventory variables to correct.
    type: str
notes:
  - Routes the kernel adds on its own (for addresses, from router advertisements) are not
    counted; they come back by themselves.
seealso:
  - module: tuntap.qemu.bridge_port
'''

EXAMPLES = r'''
- name: The host holds the inventory's LAN address and gateway (fails naming what it holds)
  tuntap.qemu.uplink_info:
    name: eth0
    bridge: br0
    addresses: [10.0.0.11/24]
    gateway: 10.0.0.1
    exact: true
    hint: fix tuntap_qemu_uplink_address or tuntap_qemu_uplink_gateway

- name: eth0 (or br0 after the takeover) holds a DHCP lease and its client runs there
  tuntap.qemu.uplink_info:
    name: eth0
    bridge: br0
    dhcp: true

- name: What eth0 holds
  tuntap.qemu.uplink_info:
    name: eth0
  register: uplink
'''

RETURN = r'''
uplink:
  description: The uplink as it is.
  returned: always
  type: dict
  contains:
    name:
      description: The uplink.
      type: str
      sample: eth0
    exists:
      description: Whether the interface exists.
      type: bool
    holder:
      description: The link that holds the host's LAN addresses - the uplink, or its bridge.
      type: str
      sample: br0
    master:
      description: The bridge the uplink is a port of, or null.
      type: str
    addresses:
      description:
        - Addresses of the holder (not IPv6 link-local), the ones compared with O(addresses).
        - Not the IPv6 addresses the kernel made itself from the LAN router's advertisements (see RV(uplink.autoconf)).
      type: list
      elements: str
      sample: [10.0.0.11/24]
    autoconf:
      description:
        - The holder's IPv6 addresses that the kernel made from the LAN router's advertisements (SLAAC) and their temporary
          (privacy) addresses (not with O(dhcp)).
        - They are never compared, moved to the bridge or persisted; the link that hears the router makes them again.
      type: list
      elements: str
      sample: [fd00:10::5054:ff:fe00:1/64]
    gateway:
      description: The router of the holder's IPv4 default route, or null.
      type: str
      sample: 10.0.0.1
    routes:
      description: The configured routes through the holder, as C(ip route) shows them (not with O(dhcp)).
      type: list
      elements: str
      sample: [default via 10.0.0.1 onlink]
    lease:
      description: With O(dhcp), the holder's dynamic IPv4 address (the lease), or null.
      type: str
      version_added: 0.3.0
      sample: 10.44.0.50/24
    dhcp_client:
      description: With O(dhcp), the DHCP client running on the holder, or null.
      type: dict
      version_added: 0.3.0
      contains:
        pid:
          description: Its process id.
          type: int
        program:
          description: V(dhclient), V(dhcpcd) or V(udhcpc).
          type: str
        argv:
          description: Its command line.
          type: list
          elements: str
        pidfile:
          description: dhclient's C(-pf) file, or null.
          type: str
        leasefile:
          description: dhclient's C(-lf) file, or null.
          type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._links.converge import UplinkInfoSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            bridge=dict(type='str'),
            addresses=dict(type='list', elements='str'),
            gateway=dict(type='str'),
            exact=dict(type='bool', default=False),
            dhcp=dict(type='bool', default=False),
            hint=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    module_runner.run(module, UplinkInfoSteps())


if __name__ == '__main__':
    main()
