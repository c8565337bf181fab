# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link subsystem (tap_device, bridge_port, uplink_info): read the kernel once, plan,
fail with every error, apply.

    specs.py            module parameters -> tap and bridge specs (validated, every error)
    rtnl_snapshot.py    the snapshot of links and addresses, decoded with socket + struct
    reading.py          read_snapshot(), the routes through a link, ports, device facts
    netlink.py          pyroute2, imported on first use (writes and route reading only)
    actions.py          the typed plan actions (Delete, Tun, BridgeCreate, LinkSet, ...)
    planning.py         LinkPlan, plan_tap, plan_bridge (the generic bridge, STP ordering)
    uplink_takeover.py  bridged_lan: the uplink's addresses and routes move to the bridge
    uplink_check.py     the uplink as it is against what the inventory says
    router_solicit.py   one IPv6 router solicitation (SLAAC on the link that takes the LAN)
    marks.py            the mark (interface alias) that says a link is ours
    pruning.py          prune: our taps and bridges that a call does not hold go
    tun_holders.py      the processes that hold a tap/tun open (/proc fdinfo)
    applying.py         apply_plan(): the actions through pyroute2 and tun ioctls
    tuntap.py           tun/tap ioctls on /dev/net/tun
    converge.py         the link modules' steps for module_runner
"""
