# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest DHCP/DNS subsystem (guest_dhcp): one dnsmasq per host on the internal interfaces.

    dhcp_config.py      the request as records, its validation, the dnsmasq files rendered
    dhcp_sockets.py     who else holds the DHCP and DNS ports (ss output parsed), conflicts
    dnsmasq_service.py  our dnsmasq as a pidfile'd process or a systemd unit; the action decided
    dhcp_firewall.py    our nftables table inet tuntap_qemu_dhcp, drop policies of other tables
    dhcp_module.py      the guest_dhcp module's steps for module_runner
"""
