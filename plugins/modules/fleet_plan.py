#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin plugins/action/fleet_plan.py on the controller;
# this file only documents it.

from __future__ import annotations

DOCUMENTATION = r'''
module: fleet_plan
short_description: Validate the inventory of a whole fleet of hypervisors and plan each host
version_added: 0.1.0
description:
  - Reads the C(tuntap_qemu_*) variables of every host in O(hosts) (the inventory schema of
    the topology roles, described in the collection's C(docs/inventory.md)), checks them all
    together and returns, per host, the plan the topology roles converge - taps, the bridge,
    forwarding, NAT and the guests with every default filled in.
  - Fails before any host is touched, with one message that lists every problem of the fleet,
    each naming the host, the variable path and the value (see RV(errors)).
  - Checked across the fleet - guest names, MACs (given or the default stable MACs), the LAN
    addresses (every C(tuntap_qemu_uplink_address), C(tuntap_qemu_uplink_address6) and every
    bridged_lan guest address) and
    the subnets of C(routed) guests, which the LAN routes to their host.
  - Checked on each host - the topology and required values, interface names (at most 15
    bytes), taps used twice or named like the uplink or the bridge, multicast MACs,
    addresses outside their subnet (the bridge subnet for bridged_nat, the LAN subnet for
    bridged_lan), gateways that are not the host side, overlapping routed_nat subnets, guest
    addresses used twice behind one bridge, and subnets that overlap the uplink subnet.
  - Guests behind NAT on different hosts may use the same addresses and subnets.
  - With C(tuntap_qemu_pool), guests without an address get one - a free /24 of the pool for
    routed topologies (hosts in sorted order, guests in list order, skipping every network
    the inventory names, host side .1 and guest .2), the next free address of the bridge
    subnet for bridged_nat. The same inventory always gives the same plan.
  - IPv6 beside IPv4 (dual-stack) - C(tuntap_qemu_pool6) plans a /64 per routed guest (host
    side V(::1)) or the bridged_nat bridge's /64, C(tuntap_qemu_bridge_address6) and a guest's
    C(address6) give them; C(tuntap_qemu_nat6) masquerades them (NAT66). Where the host runs its
    DHCP server the networks are advertised (exactly /64) and a served guest takes its SLAAC
    address (EUI-64 of its MAC); otherwise a static one. IPv6 pools and guest networks are
    unique across the fleet and outside the uplink's IPv6 subnet; bridged_lan refuses the IPv6
    settings (SLAAC from the LAN's router). C(tuntap_qemu_uplink_address6) is the uplink's static
    IPv6 address - checked with the IPv4 one, moved to the bridge by bridged_lan.
  - Isolated networks (issue 13) - topology C(isolated), guests on a bridge of the host's with its
    DHCP, DNS and router advertisements, no NAT, forwarding off (C(tuntap_qemu_nat6) and guest
    C(forwards) are errors); guest C(isolated=true) on the bridged topologies makes its tap an
    isolated bridge port (C(bridge.isolated_ports)).
  - VDE (issue 13) - C(tuntap_qemu_vde) on routed and routed_nat is a VDE switch whose tap holds the
    host side of the VDE subnet; guests with C(vde=true) are on it (no tap of their own, an address
    of the VDE subnet given or the next free one). Its subnet may not overlap the uplink's, the
    host's guest subnets or (routed) another host's routed guest networks.
  - Runs on the controller and changes nothing; call it once per play with C(run_once).
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: It changes nothing, so check mode makes no difference.
  diff_mode:
    support: none
  idempotent:
    support: full
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  hosts:
    description:
      - The inventory hostnames to validate and plan together.
      - Default is the play's hosts (C(ansible_play_hosts_all)).
      - Each needs C(tuntap_qemu_topology); list only the hypervisors.
    type: list
    elements: str
notes:
  - Users and groups are not resolved here (they live on the hosts); the modules check them.
  - Image files are not checked here either; M(tuntap.qemu.qemu_guest) does that on the host.
seealso:
  - module: tuntap.qemu.tap_device
  - module: tuntap.qemu.bridge_port
  - module: tuntap.qemu.masquerade
  - module: tuntap.qemu.qemu_guest
'''

EXAMPLES = r'''
- name: Validate the fleet and plan every hypervisor (fails before anything changes)
  tuntap.qemu.fleet_plan:
    hosts: "{{ groups['hypervisors'] }}"
  run_once: true
  register: fleet

- name: Show the plan, one line per guest
  ansible.builtin.debug:
    var: fleet.summary
  run_once: true

- name: The taps of this host
  tuntap.qemu.tap_device:
    devices: "{{ fleet.plan[inventory_hostname].taps }}"

- name: Masquerade its guest networks - exactly those of the plan (none without NAT)
  tuntap.qemu.masquerade:
    rules: "{{ fleet.plan[inventory_hostname].nat }}"
'''

RETURN = r'''
plan:
  description:
    - One host plan per host of O(hosts), keyed by inventory_hostname. The keys below are
      those of one host plan.
  returned: success
  type: dict
  sample:
    hv1:
      topology: routed
      uplink: eth0
      uplink_address: 10.0.0.11/24
      forwarding: true
      forwarding_families: [ipv4]
      taps:
        - {name: tap0, user: null, group: null, addresses: [192.168.0.1/24]}
      bridge: null
      nat: []
      dhcp:
        domain: qemu.internal
        host_name: hv1
        networks:
          - interface: tap0
            address: 192.168.0.1/24
            address6: null
            range: null
            hosts: [{mac: "52:54:00:ea:97:99", address: 192.168.0.10, name: vm1, address6: null}]
      port_forwards: []
      guests:
        - name: vm1
          tap: tap0
          mac: "52:54:00:ea:97:99"
          user: null
          group: null
          run_as: null
          address: 192.168.0.10/24
          ip: 192.168.0.10
          prefixlen: 24
          netmask: 255.255.255.0
          network: 192.168.0.0/24
          gateway: 192.168.0.1
          kernel_ip: "ip=192.168.0.10::192.168.0.1:255.255.255.0:vm1:eth0:off"
          interfaces_stanza: "auto eth0\niface eth0 inet static\n    address 192.168.0.10/24\n    gateway 192.168.0.1\n"
          address6: null
          ip6: null
          gateway6: null
          slaac: false
          derived: [gateway, mac, tap]
          dhcp: true
          isolated: false
          vde: null
          memory: 256
  contains:
    topology:
      description: V(routed), V(routed_nat), V(bridged_nat), V(bridged_lan) or V(isolated).
      type: str
    uplink:
      description: The uplink interface (C(tuntap_qemu_uplink), default V(eth0)).
      type: str
    uplink_address:
      description: The host's LAN address with prefix (C(tuntap_qemu_uplink_address)), V(dhcp) for a DHCP lease, or null.
      type: str
    uplink_gateway:
      description: The LAN router of the host's default route (C(tuntap_qemu_uplink_gateway)), or null.
      type: str
    uplink_network:
      description: The LAN subnet (C(tuntap_qemu_uplink_network)) in CIDR form, or null.
      type: str
    uplink_check:
      description:
        - The options of M(tuntap.qemu.uplink_info) that compare the host with its inventory
          before anything changes (name, bridge, addresses, gateway, exact, dhcp, hint), or null when
          the inventory names no uplink address or bridged_lan readdresses on purpose
          (C(tuntap_qemu_uplink_readdress)). bridged_lan needs an exact match.
        - With C(tuntap_qemu_uplink_address=dhcp) bridged_lan checks a lease (dhcp true, no
          addresses, exact false); the other topologies check nothing (null), or only
          C(tuntap_qemu_uplink_address6) when given.
        - The addresses are C(tuntap_qemu_uplink_address), then C(tuntap_qemu_uplink_address6) when given.
      type: dict
    uplink_change:
      description:
        - The options of M(tuntap.qemu.confirmed_change) and M(tuntap.qemu.uplink_stanza) for the
          uplink - uplink, bridge, and takeover (true for bridged_lan, whose bridge takes the
          uplink over; false elsewhere, where a bridge of ours that took it over gives it back).
      type: dict
    forwarding:
      description: Whether the host routes - true for routed, routed_nat and bridged_nat, false for bridged_lan and isolated.
      type: bool
    forwarding_families:
      description:
        - The O(tuntap.qemu.ip_forward#module:family) of M(tuntap.qemu.ip_forward) - V(ipv4), and
          V(ipv6) too when the host forwards and has an IPv6 guest network.
      type: list
      elements: str
    taps:
      description:
        - One tap per guest, in guest order, in the form of the O(tuntap.qemu.tap_device#module:devices) items; a guest on
          the VDE switch has none, the switch's tap is the last (user and group null, the VDE addresses).
      type: list
      elements: dict
      contains:
        name:
          description: Tap name.
          type: str
        user:
          description: Owner (the guest's C(user), else C(tuntap_qemu_guest_user)), or null.
          type: raw
        group:
          description: Group (the guest's C(group), else C(tuntap_qemu_guest_group)), or null.
          type: raw
        addresses:
          description:
            - The host side of the tap in ADDRESS/PREFIX form - the guest's gateway with the
              prefix of its subnet for routed topologies, none for bridged ones (the tap is a port);
              then the host side of the guest's IPv6 /64 (V(::1)) for a dual-stack routed guest.
          type: list
          elements: str
    bridge:
      description: The bridge, in the form of M(tuntap.qemu.bridge_port) options; null for routed topologies.
      type: dict
      contains:
        name:
          description: Bridge name (C(tuntap_qemu_bridge), default V(br0)).
          type: str
        addresses:
          description:
            - The bridge's addresses - C(tuntap_qemu_bridge_address) (then its IPv6 address) for bridged_nat, the host's
              LAN address C(tuntap_qemu_uplink_address) (moved from the uplink) for bridged_lan, then
              C(tuntap_qemu_uplink_address6) when given.
          type: list
          elements: str
        ports:
          description: Its ports - the taps, and for bridged_lan the uplink last.
          type: list
          elements: str
        uplink:
          description: For bridged_lan the port whose addresses and routes move to the bridge (the uplink), else null.
          type: str
        gateway:
          description: For bridged_lan the router of the default route that moves with the addresses, else null.
          type: str
        readdress:
          description: For bridged_lan, whether the bridge takes the inventory's address on purpose (C(tuntap_qemu_uplink_readdress)).
          type: bool
        dhcp:
          description:
            - For bridged_lan with C(tuntap_qemu_uplink_address=dhcp), true - the bridge gets no
              static address (addresses empty, gateway null); the DHCP client moves to it.
          type: bool
        isolated_ports:
          description: The taps of the guests with C(isolated=true), sorted (isolated bridge ports); never the uplink.
          type: list
          elements: str
    nat:
      description:
        - Networks to masquerade out of the uplink - each guest subnet and the VDE subnet for routed_nat, the
          bridge subnet for bridged_nat, none otherwise - as the O(tuntap.qemu.masquerade#module:rules)
          of M(tuntap.qemu.masquerade), one entry per network; the IPv6 guest networks after them
          with C(tuntap_qemu_nat6=true) (NAT66).
      type: list
      elements: dict
      contains:
        source:
          description: The network in CIDR form, the one element of the list.
          type: list
          elements: str
        out_interface:
          description: The uplink.
          type: str
    vde:
      description:
        - The options of M(tuntap.qemu.vde_switch) - C(tap), C(socket) (C(<tuntap_qemu_vde_runtime_dir>/<tap>.ctl)),
          C(group) (or null) and C(mode) (V(0770) with a group, else V(0700)); null without C(tuntap_qemu_vde).
      type: dict
    dhcp:
      description:
        - The options of M(tuntap.qemu.guest_dhcp) - C(domain), C(host_name) (the host in the
          zone, null when its inventory name is no DNS label) and C(networks), one per
          internal interface with a guest served by DHCP (each routed tap, the VDE switch's tap, the bridge of
          bridged_nat and isolated) with the host's C(address) there, its IPv6 C(address6) advertised for SLAAC
          (or null), the dynamic C(range) (or null) and a static lease per guest in C(hosts)
          (C(mac), C(address), C(name), C(address6) for its AAAA record or null). A network with
          an C(address6) is listed even without a served guest.
        - Null when the host serves no DHCP (C(tuntap_qemu_dhcp=false), bridged_lan).
      type: dict
    port_forwards:
      description:
        - The O(tuntap.qemu.port_forward#module:forwards) of M(tuntap.qemu.port_forward) - every
          forward of the host's guests - C(port), C(protocol), C(destination) (the guest's
          address), C(destination_port) and C(source) (a list, or null for anywhere).
      type: list
      elements: dict
    guests:
      description:
        - The guests in inventory order with every default filled in, plus the
          M(tuntap.qemu.qemu_guest) options the inventory gives (C(kernel), C(initrd),
          C(append), C(disk), C(disk_format), C(memory), C(cpus), C(machine), C(accel),
          C(autostart), C(extra_args)), only when given.
        - A guest with C(kernel) gets C(append) with its C(kernel_ip) added unless its own
          C(append) names an C(ip=) argument, or it is served by DHCP (C(dhcp)) and asks for
          its address - exactly what M(tuntap.qemu.qemu_guest) is given.
      type: list
      elements: dict
      contains:
        name:
          description: Guest name.
          type: str
        tap:
          description: Its tap (default C(tap<index>), the position in C(tuntap_qemu_guests)); null on the VDE switch.
          type: str
        mac:
          description: Its MAC, lower case (default the stable MAC of the name, see the C(tuntap.qemu.stable_mac) filter).
          type: str
        user:
          description: Owner of its tap, or null.
          type: raw
        group:
          description: Group of its tap, or null.
          type: raw
        run_as:
          description: User QEMU runs as (the guest's C(run_as), else its tap owner), or null.
          type: raw
        address:
          description: Guest address in ADDRESS/PREFIX form, given or planned.
          type: str
        ip:
          description: The address without prefix.
          type: str
        prefixlen:
          description: Prefix length.
          type: int
        netmask:
          description: Netmask.
          type: str
        network:
          description: The guest subnet in CIDR form.
          type: str
        gateway:
          description: The guest's default gateway (the host side for routed and bridged_nat; the LAN's router or null for bridged_lan).
          type: str
        kernel_ip:
          description: The kernel C(ip=) argument for the guest (null for IPv6), as the C(tuntap.qemu.guest_kernel_ip) filter renders it.
          type: str
        interfaces_stanza:
          description: The guest's Debian C(/etc/network/interfaces) stanza (with an C(inet6 auto) or C(inet6 static) one when dual-stack).
          type: str
        address6:
          description: The guest's IPv6 address in ADDRESS/PREFIX form (given, planned or its SLAAC one), or null.
          type: str
        ip6:
          description: The IPv6 address without prefix, or null.
          type: str
        gateway6:
          description: The host side of its IPv6 network (its IPv6 router), or null.
          type: str
        slaac:
          description: Its C(address6) is the one its kernel makes by SLAAC from the host's router advertisements (EUI-64 of its MAC).
          type: bool
        derived:
          description: Which of C(address), C(address6), C(gateway), C(mac) and C(tap) the plan filled in.
          type: list
          elements: str
        dhcp:
          description:
            - Its address is a static lease of the host's DHCP server, which also names it
              (C(<name>.<domain>)); false for a guest with C(dhcp=false), an IPv6 guest, or a
              host without DHCP.
          type: bool
        isolated:
          description: Its tap is an isolated port of the bridge (C(isolated=true)).
          type: bool
        vde:
          description: On the host's VDE switch (C(vde=true)) - the switch's socket (C(vde.socket)); else null.
          type: str
summary:
  description: One line per guest (or per host without guests), to show the plan.
  returned: success
  type: list
  elements: str
  sample:
    - "hv1 routed: vm1 on tap0, mac 52:54:00:ea:97:99, 192.168.0.10/24 via 192.168.0.1"
errors:
  description: Every problem found, one per item, each starting with the host.
  returned: failure
  type: list
  elements: str
  sample:
    - "hv2: tuntap_qemu_guests[1].mac: '52:54:00:aa:bb:cc' is also used by hv1 vm3"
msg:
  description: What was planned, or the count and list of problems.
  returned: always
  type: str
'''
