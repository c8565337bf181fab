#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: guest_dhcp
short_description: DHCP with static leases and DNS names for the QEMU guests (one dnsmasq per host)
version_added: 0.3.0
description:
  - Runs one dnsmasq (Debian's C(dnsmasq-base)) per host, or per network namespace, serving the
    guests on the internal interfaces (routed taps, the bridged_nat bridge) with a static lease
    per guest (its MAC, its planned address, its name as hostname), the interface address as
    router and DNS server, and an optional dynamic range.
  - dnsmasq binds only to the listed interfaces (C(bind-dynamic), C(except-interface=lo)), never
    the wildcard address, C(lo) or the uplink, so it coexists with systemd-resolved, a system
    dnsmasq or libvirt's dnsmasq. Names of O(domain) are answered from the plan only
    (C(local=/domain/)); other names go to O(resolvers).
  - Three files in O(config_dir), each with a C(# Managed by tuntap.qemu) header -
    C(dnsmasq.conf), C(hosts) (the static leases) and C(names) (the DNS names). When only
    C(hosts) or C(names) change dnsmasq gets SIGHUP (it rereads them, same pid); when
    C(dnsmasq.conf) changes it restarts; when nothing changes nothing happens.
  - A network with O(networks[].address6) is IPv6 too - router advertisements for its /64
    (SLAAC) and AAAA records of the names (O(networks[].hosts[].address6), the host's
    O(networks[].address6)).
  - Before anything changes, the module fails naming the process (pid and command line) when
    another process holds a DHCP server socket on one of the interfaces (or on every interface),
    or the DNS port on an interface address (or on every address).
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
options:
  state:
    description:
      - V(present) converges dnsmasq to O(networks); V(absent) stops our dnsmasq and removes our
        files, unit and firewall rules. O(networks=[]) with V(present) is the same as V(absent).
    type: str
    choices: [present, absent]
    default: present
  networks:
    description: The internal networks served, one per interface.
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description: The interface, such as V(tap0) or V(br0).
        type: str
        required: true
      address:
        description: The host's address on it with prefix, such as V(192.168.3.1/24); the router and DNS server of its guests.
        type: str
        required: true
      address6:
        description:
          - The host's IPv6 address on it with prefix, exactly a /64 such as V(fd00:1::1/64); the
            interface must hold it. The prefix is advertised there (C(enable-ra) and an RA-only
            C(dhcp-range)), so the guests make their SLAAC addresses in it and take the host's
            link-local address as default router and DNS server; no DHCPv6.
          - Our table accepts ICMPv6 router solicitations from the interface.
          - The host takes no advertisement of its own - a router must not autoconfigure from
            the prefixes it advertises (ifupdown's C(inet6 static) does the same at boot) - so
            before dnsmasq starts or reloads, the interface gets C(net.ipv6.conf.IF.accept_ra=0)
            and C(autoconf=0) at runtime, and the kernel's autoconfigured addresses there in the
            advertised /64 (global, not permanent - C(dynamic) in C(ip -6 addr)) are deleted;
            permanent addresses and other prefixes are never touched. Shown in check and diff
            mode. An interface that does not exist yet is skipped.
        type: str
      range:
        description: An optional dynamic range [FIRST, LAST] inside the subnet for guests not in the plan.
        type: list
        elements: str
      hosts:
        description: The guests with a static lease.
        type: list
        elements: dict
        default: []
        suboptions:
          mac:
            description: The guest's MAC.
            type: str
            required: true
          address:
            description: Its address (inside the subnet, not the interface address).
            type: str
            required: true
          name:
            description: Its name (a DNS label); resolves as C(<name>.<domain>).
            type: str
            required: true
          address6:
            description:
              - Its IPv6 address without prefix (inside the network's O(networks[].address6) /64
                when that is set); an AAAA record of its name.
            type: str
  domain:
    description: The DNS domain of the guests.
    type: str
    default: qemu.internal
  host_name:
    description: The host's name; resolves to its address on each interface.
    type: str
  resolvers:
    description:
      - Where other names are forwarded. Null - the host's C(/etc/resolv.conf); a list - only
        these; V([]) - no forwarding.
    type: list
    elements: str
  lease_time:
    description: Lease time of every range, in dnsmasq's form (V(1h), V(45m), V(infinite)).
    type: str
    default: 1h
  service:
    description:
      - V(systemd) - the unit C(tuntap-qemu-dnsmasq.service) in O(unit_dir), enabled and started;
        V(process) - a daemonized dnsmasq with its pidfile in O(runtime_dir); V(auto) - systemd
        when PID 1 is systemd and the module runs in its network namespace, else process.
    type: str
    choices: [auto, systemd, process]
    default: auto
  config_dir:
    description: Folder of C(dnsmasq.conf), C(hosts) and C(names).
    type: path
    default: /etc/tuntap-qemu/dnsmasq
  runtime_dir:
    description: Folder of the pidfile.
    type: path
    default: /run/tuntap-qemu/dnsmasq
  lease_file:
    description: dnsmasq's lease file.
    type: path
    default: /var/lib/tuntap-qemu/dnsmasq.leases
  unit_dir:
    description: Folder of the systemd unit.
    type: path
    default: /etc/systemd/system
  firewall:
    description:
      - Accept UDP 67 and UDP/TCP 53 (IPv4 and IPv6) from the interfaces, and ICMPv6 router
        solicitations from those with O(networks[].address6), in our own nftables table
        C(inet tuntap_qemu_dhcp). Without nft the table is skipped with a warning.
    type: bool
    default: true
  foreign_input:
    description:
      - An accept in our table does not override another table's drop. With an input chain of
        policy drop elsewhere, V(ignore) warns naming it; V(accept) inserts the same scoped
        accepts at the top of iptables-nft's C(ip filter INPUT) (an admin's
        C(iptables -P INPUT DROP)), with our comment, removed with O(state=absent). IPv6
        chains (C(ip6 filter INPUT)) are only warned about.
    type: str
    choices: [accept, ignore]
    default: ignore
  allow_missing_interface:
    description: Do not require the interfaces to exist and hold their address (dnsmasq serves them when they come).
    type: bool
    default: false
  dnsmasq:
    description: Path of the dnsmasq program; by default found on PATH and in C(/usr/sbin).
    type: path
notes:
  - Runs dnsmasq as user C(dnsmasq) when it exists, else as root (with a warning).
  - Inside a network namespace (C(ip netns exec), the C(tuntap.qemu.netns) connection) dnsmasq
    serves that namespace's interfaces; O(service=auto) then runs it as a process.
seealso:
  - module: tuntap.qemu.tap_device
  - module: tuntap.qemu.bridge_port
'''

EXAMPLES = r'''
- name: DHCP and names for the guests on tap0 and br0
  tuntap.qemu.guest_dhcp:
    host_name: hv2
    networks:
      - interface: tap0
        address: 192.168.3.1/24
        address6: fd00:3::1/64
        hosts:
          - {mac: "52:54:00:12:34:03", address: 192.168.3.10, name: vm3, address6: "fd00:3::5054:ff:fe12:3403"}
      - interface: br0
        address: 192.168.5.1/24
        range: [192.168.5.100, 192.168.5.150]
        hosts:
          - {mac: "52:54:00:12:34:05", address: 192.168.5.10, name: vm5}

- name: No DHCP on this host
  tuntap.qemu.guest_dhcp:
    state: absent
'''

RETURN = r'''
action:
  description: What happened to dnsmasq.
  returned: success
  type: str
  choices: [none, started, reloaded, restarted, stopped]
  sample: reloaded
pid:
  description: The pid of our dnsmasq; null when none runs.
  returned: success
  type: int
  sample: 4242
service:
  description: How dnsmasq runs here.
  returned: success
  type: str
  sample: process
config:
  description: The rendered C(dnsmasq.conf); empty with O(state=absent).
  returned: success
  type: str
foreign_input_rules:
  description: The iptables-nft rules inserted into C(ip filter INPUT).
  returned: when rules were inserted
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._dhcp.dhcp_module import GuestDhcpSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            networks=dict(type='list', elements='dict', default=[], options=dict(
                interface=dict(type='str', required=True),
                address=dict(type='str', required=True),
                address6=dict(type='str'),
                range=dict(type='list', elements='str'),
                hosts=dict(type='list', elements='dict', default=[], options=dict(
                    mac=dict(type='str', required=True),
                    address=dict(type='str', required=True),
                    name=dict(type='str', required=True),
                    address6=dict(type='str'),
                )),
            )),
            domain=dict(type='str', default='qemu.internal'),
            host_name=dict(type='str'),
            resolvers=dict(type='list', elements='str'),
            lease_time=dict(type='str', default='1h'),
            service=dict(type='str', choices=['auto', 'systemd', 'process'], default='auto'),
            config_dir=dict(type='path', default='/etc/tuntap-qemu/dnsmasq'),
            runtime_dir=dict(type='path', default='/run/tuntap-qemu/dnsmasq'),
            lease_file=dict(type='path', default='/var/lib/tuntap-qemu/dnsmasq.leases'),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            firewall=dict(type='bool', default=True),
            foreign_input=dict(type='str', choices=['accept', 'ignore'], default='ignore'),
            allow_missing_interface=dict(type='bool', default=False),
            dnsmasq=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    module_runner.run(module, GuestDhcpSteps())


if __name__ == '__main__':
    main()
