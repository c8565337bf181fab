# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NAT subsystem (masquerade, port_forward): our own netfilter rules, now and at boot.

    nat_rules.py            module parameters -> the rules requested (masquerade, DNAT, forward)
    nft.py                  the nftables backend: our own table through `nft -j`
    iptables.py             the iptables backend behind the same interface
    netfilter_commands.py   running nft/iptables (argv lists, LC_ALL=C), NetfilterError
    nft_boot_unit.py        the boot unit that loads our nft file before the network
    nat_module.py           the two modules' converge: backend choice, plan, apply, files
"""
