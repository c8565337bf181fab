#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: port_forward
short_description: Forward a host port to a guest behind NAT, now and after a reboot
version_added: 0.1.0
description:
  - Makes a service of a NATed guest reachable from the LAN - connections to O(port) of the
    host are sent on (destination NAT) to O(destination), port O(destination_port), with
    the forward rules that let the connection and its replies through.
  - A forward covers three paths. B(From outside) (the LAN, another guest subnet, a routed
    guest's tap) - a C(prerouting) rule. B(From the host itself) - connections that the host
    opens to its own address and port pass no prerouting hook, so a rule in a nat C(output)
    chain does the same for them; connections to a loopback address (C(127.0.0.0/8), C(::1))
    are left alone, because a DNATed connection from a loopback source could not leave the
    host. B(From a guest of the destination's own subnet) (hairpin) - a guest that connects to
    the host's address and port and is sent to a neighbour on its bridge (or to itself) would
    get the reply straight from that neighbour, from an address it never asked, so a
    C(postrouting) rule (C(ct status dnat), from that subnet to O(destination) and
    O(destination_port)) masquerades such connections to the host's address on that subnet;
    the guest behind the forward then sees the host as the peer, not the neighbour. That
    subnet is the managed subnet the destination lies in (see below) and is named in the
    rule's comment (C(hairpin 192.168.5.11:80 from 192.168.5.0/24)).
  - With O(in_interface) the forward is scoped to connections that arrive through that
    interface - it has neither the output rule nor the hairpin rule. With
    O(allow_unmanaged_destination=true) a destination outside every managed subnet has no
    hairpin rule (there is no subnet to name).
  - The rules live with those of M(tuntap.qemu.masquerade) (same table, same backends, same
    persistence). A call owns the forward of O(protocol), O(host_address) and O(port), so
    each forwarded port is a task of its own and O(state=absent) removes exactly its rules.
  - The list form O(forwards) instead names B(all) the port forwards of the host in one call -
    ours that it does not list are removed (an empty list removes them all); rules without
    our comment, and our masquerade rules, are never touched. One call is one nft batch.
  - Our rules of this call that the backend not chosen holds (the iptables rules of an
    earlier O(backend=iptables) when it is now V(nftables), and the other way round) are
    removed with that backend's persistent files and boot unit, when its program is
    installed; see RV(other_backend).
  - The destination must lie in a managed subnet - a network masqueraded in our rules, or a
    subnet of an address on an interface of the host that is neither O(in_interface) nor
    an interface with a default route (the guests' bridge or taps). Anything else fails,
    because forwarding there would relay LAN traffic on to another network, unless
    O(allow_unmanaged_destination=true).
  - The whole request is validated before anything changes; the runtime rules and the
    persistent file are reported in the diff.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.nat
options:
  protocol:
    description: Transport protocol of the forwarded port (with O(forwards), of each entry without one).
    type: str
    choices: [tcp, udp]
    default: tcp
  port:
    description:
      - The host port (1-65535).
      - Required unless O(forwards) is given; mutually exclusive with it.
    type: int
  host_address:
    description:
      - Forward only connections to this address of the host (C(ip daddr)). Without it,
        connections to the port on any address of the host are forwarded (IPv4 or IPv6,
        after the family of O(destination)).
      - A forward with a host address is matched before one of the same port without (in
        the prerouting and in the output chain).
    type: str
  destination:
    description:
      - The guest address the connections go to (IPv4 or IPv6, no prefix length).
      - Required with O(state=present) (without O(forwards)).
    type: str
  destination_port:
    description: The guest port; the same as O(port) when not given.
    type: int
  in_interface:
    description:
      - Forward only connections arriving through this interface (C(iifname)); it must
        exist unless O(allow_missing_interface=true).
      - Such a forward does not cover connections from the host itself or the hairpin path
        of guests (see the description).
    type: str
  source:
    description:
      - Forward only connections from these networks (CIDR form, no host bits set); from
        anywhere when not given. The output rules are restricted the same way (the host's
        own connections come from one of its addresses).
    type: list
    elements: str
  forwards:
    description:
      - The list form - every port forward of this host, each entry with the options of the
        single form. Our port forwards not listed are removed; V([]) removes them all. Two
        entries of the same protocol, host address and port are an error; errors name the
        entry, for example C(forwards[2].destination).
      - Goes only with O(state=present); mutually exclusive with O(port), O(host_address),
        O(destination), O(destination_port), O(in_interface) and O(source).
    type: list
    elements: dict
    version_added: 0.3.0
    suboptions:
      port:
        description: The host port, as in O(port).
        type: int
        required: true
      protocol:
        description: As O(protocol), which is the default.
        type: str
        choices: [tcp, udp]
      host_address:
        description: As O(host_address).
        type: str
      destination:
        description: The guest address, as in O(destination).
        type: str
        required: true
      destination_port:
        description: As O(destination_port).
        type: int
      in_interface:
        description: As O(in_interface).
        type: str
      source:
        description: As O(source).
        type: list
        elements: str
  allow_unmanaged_destination:
    description:
      - Forward to O(destination) (with O(forwards), to any destination of it) even when it
        lies outside every managed subnet.
    type: bool
    default: false
  state:
    description:
      - Whether the forward of O(protocol), O(host_address) and O(port) exists.
      - With O(forwards) only V(present).
    type: str
    choices: [present, absent]
    default: present
notes:
  - The guest must route its replies through this host (its default gateway is the host),
    as guests on a NATed bridge or tap do.
  - Where C(br_netfilter) is active on a bridge (C(net.bridge.bridge-nf-call-iptables=1), as
    Docker sets it), a DNATed connection from a guest of the bridge is bridged, not routed, to
    its destination; a guest that connects to a host port forwarded to B(itself) then gets
    its own packets back only with hairpin mode on its bridge port
    (C(bridge link set dev PORT hairpin on)). Other guests of the bridge need nothing.
  - The rules that accept the forwarded connection (C(ct status dnat)) and its replies count
    packets in our table; on a host where another table's forward chain drops, see
    O(foreign_forward).
seealso:
  - module: tuntap.qemu.masquerade
'''

EXAMPLES = r'''
- name: SSH to guest vm1 through port 2201 of the host
  tuntap.qemu.port_forward:
    port: 2201
    destination: 192.168.0.11
    destination_port: 22

- name: DNS of a guest over UDP, only from the office network and only on eth0
  tuntap.qemu.port_forward:
    protocol: udp
    port: 53
    destination: 192.168.0.53
    in_interface: eth0
    source: [203.0.113.0/24]

- name: Port 443 of one of the host's addresses to a web guest
  tuntap.qemu.port_forward:
    port: 443
    host_address: 198.51.100.7
    destination: 192.168.0.80

- name: Every port forward of the host in one call (ours not listed are removed)
  tuntap.qemu.port_forward:
    forwards:
      - port: 2201
        destination: 192.168.0.11
        destination_port: 22
      - port: 53
        protocol: udp
        destination: 192.168.0.53
        in_interface: eth0
        source: [203.0.113.0/24]

- name: Remove the SSH forward
  tuntap.qemu.port_forward:
    port: 2201
    state: absent
'''

RETURN = r'''
backend:
  description: The backend that carries the rules.
  returned: always
  type: str
  sample: nftables
backend_reason:
  description: Why O(backend=auto) chose it.
  returned: always
  type: str
  sample: table inet tuntap_qemu exists
rules:
  description: The rules of this call after it (predicted in check mode); empty with O(state=absent). With O(forwards), all our rules of this kind.
  returned: always
  type: list
  elements: dict
  contains:
    chain:
      description: V(prerouting) (from outside), V(output) (from the host), V(forward) or V(postrouting) (hairpin).
      type: str
      sample: prerouting
    comment:
      description: The rule's comment, its identity.
      type: str
      sample: tuntap.qemu port_forward tcp *:2201 | dnat 192.168.0.11:22
    rule:
      description: The rule in the backend's syntax.
      type: str
      sample: meta nfproto ipv4 tcp dport 2201 counter dnat ip to 192.168.0.11:22 comment "tuntap.qemu port_forward tcp *:2201 | dnat 192.168.0.11:22"
foreign_rules:
  description: The accept rules of this call in other tables' forward chains (O(foreign_forward=accept)), as iptables-nft command lines.
  returned: always
  type: list
  elements: str
persistent:
  description: The persistent files after the call.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the file.
      type: str
      sample: /etc/nftables.d/tuntap-qemu.nft
    changed:
      description: Whether the file was (or in check mode would be) written or removed.
      type: bool
    exists:
      description: Whether the file exists after the call.
      type: bool
boot_unit:
  description:
    - Whether the systemd unit C(tuntap-qemu-nft.service) that loads O(nft_file) at boot is
      managed (see O(boot_unit)), and why; with the V(nftables) backend and O(persistent=true).
  returned: with the nftables backend and O(persistent=true)
  type: dict
  contains:
    mode:
      description: V(systemd) (the unit and its enable link are managed) or V(none).
      type: str
      sample: systemd
    reason:
      description: Why, for O(boot_unit=auto).
      type: str
      sample: systemd is PID 1
    path:
      description: The unit file (mode V(systemd) only).
      type: str
      sample: /etc/systemd/system/tuntap-qemu-nft.service
    enabled:
      description: Whether the unit is there and enabled after the call (it goes with the last rule).
      type: bool
    active:
      description: Whether systemd has the unit active after the call; only where that systemd runs (see O(boot_unit)).
      type: bool
other_backend:
  description:
    - The rules of this call in the backend not chosen (see the description), removed; with
      its persistent files (the O(hook_file) of V(iptables), or the O(nft_file), the include in
      O(nftables_conf) and the boot unit of V(nftables)) after the call. Their diff, when they
      change, follows the others, each header naming that backend.
  returned: when the program of the other backend is installed
  type: dict
  version_added: 0.3.0
  contains:
    backend:
      description: V(iptables) or V(nftables).
      type: str
      sample: iptables
    changed:
      description: Whether anything of it was (or in check mode would be) removed or rewritten.
      type: bool
    removed:
      description: The rules removed, in that backend's syntax.
      type: list
      elements: str
    persistent:
      description: Its persistent files after the call, as RV(persistent).
      type: list
      elements: dict
backup_files:
  description: Backup copies made with O(backup=true).
  returned: when a backup was made
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._nat import nat_module, nat_rules


def main():
    argument_spec = nat_module.common_argument_spec()
    argument_spec.update(
        protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
        port=dict(type='int'),
        host_address=dict(type='str'),
        destination=dict(type='str'),
        destination_port=dict(type='int'),
        in_interface=dict(type='str'),
        source=dict(type='list', elements='str'),
        forwards=dict(type='list', elements='dict', options=dict(
            port=dict(type='int', required=True),
            protocol=dict(type='str', choices=['tcp', 'udp']),
            host_address=dict(type='str'),
            destination=dict(type='str', required=True),
            destination_port=dict(type='int'),
            in_interface=dict(type='str'),
            source=dict(type='list', elements='str'),
        )),
        allow_unmanaged_destination=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('port', 'forwards')],
                           mutually_exclusive=[('forwards', option)
                                               for option in nat_rules.PORT_FORWARD_OPTIONS])
    steps = nat_module.NatSteps(nat_module.port_forward_request,
                                nat_module.complete_port_forwards)
    module_runner.run(module, steps)


if __name__ == '__main__':
    main()
