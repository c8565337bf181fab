# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VDE switch subsystem (vde_switch): one vde_switch per host, with its own tap towards the
host, that the QEMU guests join with `-netdev vde,sock=...` (qemu_guest nics[].vde).

    switch_request.py   the module parameters as a Request record, validated
    switch_service.py   vde_switch's command line, which process is ours, the systemd unit,
                        starting and stopping the daemonized process, the action decided
    switch_module.py    the vde_switch module's steps for module_runner
"""
