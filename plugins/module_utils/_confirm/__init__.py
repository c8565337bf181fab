# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Confirmed changes (issue 11): a change that can cut the host off is applied with a rollback
armed on the host, which restores the previous runtime state and files unless confirmed.

    snapshot.py         what a rollback restores (links, addresses, routes, DHCP clients, files)
    rollback_plan.py    pure: (snapshot, state now) -> the ordered rollback steps
    rollback_helper.py  the standalone script that runs the steps when the timer fires
    arming.py           the rollback folder, the timer (systemd or a detached process), confirm
    change_module.py    the steps of the confirmed_change module
"""
