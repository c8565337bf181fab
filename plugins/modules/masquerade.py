#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: masquerade
short_description: Source NAT (masquerade) for guest subnets out of an uplink, now and after a reboot
version_added: 0.1.0
description:
  - Does the job of C(iptables -t nat -A POSTROUTING -o eth0 -s 192.168.0.0/24 -j MASQUERADE)
    for the guests of a routed or bridged NAT host, idempotently and without touching the
    rules of other software.
  - For each network of O(source) one rule rewrites the source address of packets leaving
    through O(out_interface) to that interface's address. With O(allow_forward=true) the
    forward rules come with it - new connections from the subnet out of the uplink,
    established and related replies back in, and guest-to-guest traffic inside the subnet.
  - A call owns the rules of its networks on O(out_interface) (the key of each rule), so
    several tasks share the table; O(state=absent) removes exactly the rules of the listed
    networks on that interface.
  - The list form O(rules) instead names B(all) the masquerade rules of the host in one call -
    ours that it does not list are removed (an empty list removes them all); rules without
    our comment, and our port forwards, are never touched. One call is one nft batch.
  - Our rules of this call that the backend not chosen holds (the iptables rules of an
    earlier O(backend=iptables) when it is now V(nftables), and the other way round) are
    removed with that backend's persistent files and boot unit, when its program is
    installed; see RV(other_backend).
  - The runtime rules, the persistent file and, with O(foreign_forward=accept), the accept
    rules in other tables' forward chains are computed from one desired state and each
    reported in the diff. The whole request is validated before anything changes.
  - The destinations of the masqueraded traffic are not restricted; with O(allow_forward=true)
    the guests reach everything behind the uplink.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.nat
options:
  source:
    description:
      - The guest networks to masquerade, in CIDR form with no host bits set, such as
        V(192.168.0.0/24) or V(fd00:0:0:1::/64) (IPv6 is masqueraded with C(ip6 saddr)).
      - A host address (V(192.168.0.10)) or an address with host bits (V(192.168.0.1/24)) is an error.
      - Required unless O(rules) is given; mutually exclusive with it.
    type: list
    elements: str
  out_interface:
    description:
      - The uplink the traffic leaves through (C(oifname)); it must exist unless
        O(allow_missing_interface=true).
      - Required with O(source).
    type: str
  rules:
    description:
      - The list form - every masquerade rule of this host, each a list of source networks
        out of one interface. Our masquerade rules not listed are removed; V([]) removes
        them all. Errors name the entry, for example C(rules[1].source[0]).
      - Goes only with O(state=present); mutually exclusive with O(source) and O(out_interface).
    type: list
    elements: dict
    version_added: 0.3.0
    suboptions:
      source:
        description: The guest networks, as in O(source).
        type: list
        elements: str
        required: true
      out_interface:
        description: The uplink, as in O(out_interface).
        type: str
        required: true
      allow_forward:
        description: As O(allow_forward), which is the default.
        type: bool
  state:
    description:
      - Whether the rules of these networks on O(out_interface) exist.
      - With O(rules) only V(present).
    type: str
    choices: [present, absent]
    default: present
  allow_forward:
    description:
      - Also accept the subnet's forwarded traffic - new connections from O(source) out of
        O(out_interface), established and related replies from O(out_interface) back into
        O(source), and traffic between addresses of O(source) (bridged guests, see the notes).
      - In our own table these rules count packets but cannot override another table's drop;
        see O(foreign_forward) for hosts with such a policy.
    type: bool
    default: true
notes:
  - C(br_netfilter) (C(net.bridge.bridge-nf-call-iptables=1)) makes frames bridged between
    guests pass the IP forward hook. The masquerade rule matches only traffic leaving
    through O(out_interface), which bridged frames never do (their output device is the
    bridge), so traffic between bridged guests is never NATed. It is forwarded traffic in
    the eyes of a forward chain with policy drop, though; that is why O(allow_forward) adds
    a rule for traffic inside the subnet.
  - IP forwarding itself is not switched on here; see M(tuntap.qemu.ip_forward).
seealso:
  - module: tuntap.qemu.port_forward
  - module: tuntap.qemu.ip_forward
  - module: tuntap.qemu.bridge_port
'''

EXAMPLES = r'''
- name: NAT the guests of br0 (192.168.0.0/24) out of eth0, now and at boot
  tuntap.qemu.masquerade:
    source: [192.168.0.0/24]
    out_interface: eth0

- name: IPv4 and IPv6 guest networks, on a Docker host whose FORWARD policy is drop
  tuntap.qemu.masquerade:
    source:
      - 192.168.0.0/24
      - fd00:0:0:1::/64
    out_interface: eth0
    foreign_forward: accept

- name: An uplink that only exists once the VPN is up
  tuntap.qemu.masquerade:
    source: [10.10.0.0/24]
    out_interface: wg0
    allow_missing_interface: true

- name: A host that uses legacy iptables, with an ifupdown hook for the boot
  tuntap.qemu.masquerade:
    source: [192.168.0.0/24]
    out_interface: eth0
    backend: iptables

- name: Every masquerade rule of the host in one call (ours not listed are removed)
  tuntap.qemu.masquerade:
    rules:
      - source: [192.168.0.0/24, fd00:0:0:1::/64]
        out_interface: eth0
      - source: [10.10.0.0/24]
        out_interface: wg0
        allow_forward: false

- name: Stop masquerading one subnet (other tasks' rules stay)
  tuntap.qemu.masquerade:
    source: [10.10.0.0/24]
    out_interface: wg0
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
  sample: the host has no legacy iptables rules
rules:
  description: The rules of this call after it (predicted in check mode); empty with O(state=absent). With O(rules), all our rules of this kind.
  returned: always
  type: list
  elements: dict
  contains:
    chain:
      description: V(postrouting), V(prerouting) or V(forward) (in C(iptables), POSTROUTING, PREROUTING, FORWARD).
      type: str
      sample: postrouting
    comment:
      description: The rule's comment, its identity.
      type: str
      sample: tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat
    rule:
      description: The rule in the backend's syntax.
      type: str
      sample: oifname "eth0" ip saddr 192.168.0.0/24 counter masquerade comment "tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat"
foreign_rules:
  description: The accept rules of this call in other tables' forward chains (O(foreign_forward=accept)), as iptables-nft command lines.
  returned: always
  type: list
  elements: str
  sample: ["iptables-nft -t filter -I DOCKER-USER -o eth0 -s 192.168.0.0/24 -m comment --comment '...' -j ACCEPT"]
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
        source=dict(type='list', elements='str'),
        out_interface=dict(type='str'),
        rules=dict(type='list', elements='dict', options=dict(
            source=dict(type='list', elements='str', required=True),
            out_interface=dict(type='str', required=True),
            allow_forward=dict(type='bool'),
        )),
        allow_forward=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('source', 'rules')],
                           required_together=[('source', 'out_interface')],
                           mutually_exclusive=[('rules', 'source'), ('rules', 'out_interface')])
    module_runner.run(module, nat_module.NatSteps(nat_rules.masquerade_request))


if __name__ == '__main__':
    main()
