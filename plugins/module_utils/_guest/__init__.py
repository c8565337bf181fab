# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest subsystem (qemu_guest, and the guest side for the fleet planner and filters).

    guest_config.py     stable MACs, the guest-side network (kernel ip=, interfaces stanza)
    guest_plan.py       module parameters -> a guest spec, runtime paths, the action, tap checks
    qemu.py             QEMU's argv, the QMP client, process start/observe/stop
    guest_unit.py       a guest as a systemd unit (unit text, systemctl, the unit's steps)
    guest_prune.py      which guests of ours a host has (runtime directories, unit files), what a prune removes
    qemu_guest_run.py   the qemu_guest module's steps for module_runner (one guest, or prune)
"""
