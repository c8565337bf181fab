#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: qemu_guest
short_description: Start, stop and remove QEMU guests attached to tap devices or VDE switches
version_added: 0.1.0
description:
  - Runs a QEMU guest daemonized with today's network syntax,
    C(-netdev tap,id=net0,ifname=TAP,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=MAC).
    The wiki-era C(-net nic,vlan=0 -net tap,vlan=0) fails on current QEMU with C(Invalid parameter 'vlan').
  - A guest counts as running when the pid in its pidfile is alive, is the QEMU of this
    guest (its command line is checked, so a stale pidfile or a recycled pid is not trusted)
    and answers C(query-status) on its QMP socket. A guest killed from outside is started
    again by the next converge.
  - A running guest whose command line differs from the request is restarted (see O(restart_on_change)).
  - Stopping is graceful - ACPI C(system_powerdown), then QMP C(quit) - and ends with a
    SIGKILL of that pid only when the guest does not go within O(stop_timeout).
  - With O(autostart) the guest is a systemd service, C(tuntap-qemu-guest-NAME.service) in
    C(/etc/systemd/system), enabled so that it starts at boot after the network and its taps.
    Where systemd is not the init system (no C(/run/systemd/system), as in containers and the
    namespace lab) the guest runs daemonized instead, with a warning.
  - Before anything starts, the taps are checked - they must exist (QEMU as root would
    silently create a new, unconnected tap), be taps, be up, not be held by another
    process, and be openable by O(run_as). Each problem is a clear error and no guest is half-started.
  - With O(prune=true) the module removes every guest of tuntap.qemu that O(keep) does not
    name, instead of converging one guest; see O(prune).
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
  - tuntap.qemu.attributes.netlink
options:
  name:
    description:
      - Guest name (letters, digits, C(.), C(_), C(-)); it names the runtime directory and QEMU's C(-name guest=).
      - Required unless O(prune=true), which takes no O(name).
    type: str
  state:
    description:
      - V(running) starts the guest (or restarts it when its command line changed);
        V(stopped) stops it and keeps its runtime directory (serial log);
        V(absent) stops it and removes the runtime directory.
      - With O(autostart), V(stopped) keeps the unit enabled (the guest starts again at the
        next boot, as libvirt's autostart is separate from running); V(absent) stops,
        disables and removes the unit.
    type: str
    choices: [running, stopped, absent]
    default: running
  nics:
    description:
      - The guest's network cards, each on a tap device (O(nics[].tap)) or on the host's VDE
        switch (O(nics[].vde)). At least one for V(running).
    type: list
    elements: dict
    default: []
    suboptions:
      tap:
        description:
          - Tap device on the host (see M(tuntap.qemu.tap_device)); it must exist and be up.
          - Exactly one of O(nics[].tap) and O(nics[].vde).
        type: str
      vde:
        description:
          - The socket folder of a VDE switch (see M(tuntap.qemu.vde_switch)), such as
            V(/run/tuntap-qemu/vde/vde0.ctl); the card is a port of that switch,
            C(-netdev vde,id=netN,sock=PATH). Debian's QEMU (C(qemu-system-x86)) has the vde backend.
          - The switch must be running (its control socket C(PATH/ctl) there) before the guest
            starts, else an error and nothing starts. With O(autostart) the unit has
            C(Wants=) and C(After=tuntap-qemu-vde.service).
          - Exactly one of O(nics[].tap) and O(nics[].vde). O(run_as) must be allowed into the
            socket folder (M(tuntap.qemu.vde_switch) O(tuntap.qemu.vde_switch#module:group)).
        type: path
        version_added: 0.3.0
      mac:
        description:
          - Unicast MAC of the card. A multicast MAC (lowest bit of the first octet set, as in
            the old wiki example C(11:22:33:44:55:66)) is refused.
          - Default a stable MAC with QEMU's C(52:54:00) prefix derived from the guest name and
            the card's index, the same on every run.
        type: str
      model:
        description: QEMU device model of the card.
        type: str
        default: virtio-net-pci
      queues:
        description: Queues of a multi-queue tap (the tap must be multi_queue for more than 1).
        type: int
        default: 1
  memory:
    description: Memory in MiB.
    type: int
    default: 256
  cpus:
    description: Number of virtual CPUs.
    type: int
    default: 1
  machine:
    description: QEMU machine type.
    type: str
    default: q35
  accel:
    description:
      - V(kvm), V(tcg) (software emulation) or V(auto).
      - V(auto) takes KVM only where it really works - C(/dev/kvm) readable and writable and
        C(vmx) or C(svm) in the CPU flags. C(/dev/kvm) can exist without them (nested
        virtualisation without the extensions), and KVM guests then hang, so V(auto) picks TCG there.
    type: str
    choices: [kvm, tcg, auto]
    default: auto
  kernel:
    description: Kernel image to boot directly (C(-kernel)).
    type: path
  initrd:
    description: Initial ramdisk (C(-initrd)); needs O(kernel).
    type: path
  append:
    description: Kernel command line (C(-append)); needs O(kernel).
    type: str
  disk:
    description: Disk image, attached as a virtio drive.
    type: path
  disk_format:
    description: Format of O(disk) (QEMU probes it when not given).
    type: str
    choices: [raw, qcow2]
  binary:
    description: The QEMU system emulator.
    type: str
    default: qemu-system-x86_64
  extra_args:
    description: More QEMU arguments, appended as they are (a list, no shell quoting).
    type: list
    elements: str
    default: []
  run_as:
    description:
      - User (name or uid) QEMU runs as. The taps must be owned by that user or its group
        (C(tap_device user=)), and the user needs access to C(/dev/net/tun).
      - Default the user the module runs as (root).
    type: str
  runtime_dir:
    description:
      - Directory for the pidfile, QMP socket, serial log and recorded command line.
      - Default O(runtime_root)/O(name).
    type: path
  runtime_root:
    description:
      - The folder of the guests' runtime directories, one per guest named after it
        (the default of O(runtime_dir)), and where O(prune) looks for guests.
    type: path
    default: /run/tuntap-qemu
    version_added: 0.3.0
  prune:
    description:
      - Remove every guest of tuntap.qemu on the host that O(keep) does not name, instead of
        converging the guest O(name) (which must not be given; nor O(runtime_dir) or O(nics)).
      - "A guest is found through its marks: a runtime directory under O(runtime_root) whose
        C(argv.json) is the command line of that guest with that directory's pidfile (what a
        daemonized start records), and, where systemd is the init system in this network
        namespace, a unit file C(/etc/systemd/system/tuntap-qemu-guest-NAME.service) with the
        C(# Managed by tuntap.qemu) header. Folders and units without the mark are never touched."
      - Each guest goes as with O(state=absent) - its QEMU is stopped gracefully (ACPI
        C(system_powerdown), O(stop_timeout), QMP C(quit), then SIGKILL of that pid), its unit
        stopped, disabled and removed, its runtime directory removed - one guest after the
        other, then one C(systemctl daemon-reload); the units' helper script goes with the last unit.
      - Only the pid in the pidfile is stopped, and only while C(/proc/PID/cmdline) is the QEMU
        that tuntap.qemu started there (it names the guest and the pidfile and equals
        C(argv.json)). A stale pidfile's unrelated process is left alone and the directory goes;
        a process that is not ours but names the directory (a QEMU that only looks like ours)
        is left alone with its directory, with a warning (RV(skipped)).
      - Check mode reports every removal (RV(removed)) and changes nothing; diff mode shows the
        guests before and after and each removed guest's state and unit file.
    type: bool
    default: false
    version_added: 0.3.0
  keep:
    description:
      - With O(prune=true), the names of the guests that stay (the host's plan); every other guest of ours goes.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
  restart_on_change:
    description: Restart a running guest whose command line differs from the request.
    type: bool
    default: true
  stop_timeout:
    description:
      - Seconds to wait for the guest to power down before QMP C(quit), then SIGKILL.
      - With O(autostart) the unit's C(ExecStop=) waits as long, and its C(TimeoutStopSec=)
        is O(stop_timeout) + 20 s (5 s for the quit, then SIGTERM and SIGKILL by systemd).
    type: int
    default: 30
  autostart:
    description:
      - Run the guest as a systemd service that starts at boot, one unit per guest,
        C(/etc/systemd/system/tuntap-qemu-guest-NAME.service), marked as ours by its name and
        a C(# Managed by tuntap.qemu) header (a unit file of that name without it is refused).
      - "The unit: C(Wants=)/C(After=network-online.target), C(After=networking.service)
        (ifupdown's C(auto tapN) stanzas make the taps), an C(ExecStartPre=) that waits up
        to 60 s for the taps to exist and be up, C(User=)/C(Group=) of O(run_as), QEMU in the
        foreground (no C(-daemonize)) with the same pidfile and QMP socket in the runtime
        directory, which the unit creates at every start (C(/run) is a tmpfs),
        C(ExecStop=) through QMP C(system_powerdown) then C(quit) (the script
        C(/usr/local/libexec/tuntap-qemu/qemu-guest-unit), installed with the first unit and
        removed with the last), C(Restart=on-failure), C(WantedBy=multi-user.target)."
      - The unit is written atomically; C(systemctl daemon-reload) runs only when it changed;
        it is enabled and, for O(state=running), started. A change of the unit (the command
        line, O(run_as), O(stop_timeout)) restarts a running guest when O(restart_on_change).
      - A guest that runs daemonized is stopped before its unit starts, and a guest that runs
        under its unit is stopped (and the unit disabled and removed) before it runs
        daemonized with O(autostart=false), so that two QEMUs never share a tap.
      - Without systemd as the init system (no C(/run/systemd/system)) the guest runs
        daemonized with a warning, and nothing under C(/etc/systemd) is read or written.
    type: bool
    default: false
    version_added: 0.2.0
notes:
  - The guest side of the network (address, netmask, gateway) is rendered by the
    C(tuntap.qemu.guest_interfaces) and C(tuntap.qemu.guest_kernel_ip) filters.
  - QEMU writes the guest's serial console to RV(serial_log).
seealso:
  - module: tuntap.qemu.tap_device
  - module: tuntap.qemu.vde_switch
'''

EXAMPLES = r'''
- name: Guest vm1 on tap0, booting a kernel and initrd, as user qemu
  tuntap.qemu.qemu_guest:
    name: vm1
    run_as: qemu
    nics:
      - tap: tap0
    kernel: /var/lib/guests/vmlinuz
    initrd: /var/lib/guests/initrd.gz
    append: "console=ttyS0 {{ {'address': '192.168.0.10/24', 'gateway': '192.168.0.1'} | tuntap.qemu.guest_kernel_ip }}"

- name: Guest with a disk image and two NICs
  tuntap.qemu.qemu_guest:
    name: web1
    memory: 1024
    cpus: 2
    disk: /var/lib/guests/web1.qcow2
    nics:
      - tap: tap1
        mac: 52:54:00:12:34:56
      - tap: tap2

- name: Guest vm12 on the host's VDE switch (tuntap.qemu.vde_switch tap=vde0)
  tuntap.qemu.qemu_guest:
    name: vm12
    nics:
      - vde: /run/tuntap-qemu/vde/vde0.ctl
    kernel: /var/lib/guests/vmlinuz

- name: Guest vm2 as a systemd service that starts at boot (tuntap-qemu-guest-vm2.service)
  tuntap.qemu.qemu_guest:
    name: vm2
    autostart: true
    run_as: qemu
    nics:
      - tap: tap3
    disk: /var/lib/guests/vm2.qcow2

- name: Stop it (ACPI powerdown, then quit, then kill)
  tuntap.qemu.qemu_guest:
    name: web1
    state: stopped

- name: Remove every guest of ours but vm1 and vm2 (processes, units, runtime directories)
  tuntap.qemu.qemu_guest:
    prune: true
    keep: [vm1, vm2]
    runtime_root: /run/tuntap-qemu
'''

RETURN = r'''
state:
  description: V(running), V(stopped) or V(absent) after the call.
  returned: unless O(prune=true)
  type: str
  sample: running
pid:
  description: Pid of the QEMU process (null when not running or in check mode before a start).
  returned: unless O(prune=true)
  type: int
  sample: 4242
argv:
  description: The full QEMU command line as a list.
  returned: unless O(prune=true)
  type: list
  elements: str
cmdline:
  description: The same command line, shell-quoted, for humans.
  returned: unless O(prune=true)
  type: str
accel:
  description: The accelerator chosen (V(kvm) or V(tcg)) and why.
  returned: unless O(prune=true)
  type: dict
  sample: {"name": "tcg", "reason": "auto: the CPU flags have neither vmx nor svm"}
macs:
  description: The MAC of each NIC, in order.
  returned: unless O(prune=true)
  type: list
  elements: str
  sample: ["52:54:00:3c:1d:9e"]
qmp_socket:
  description: Path of the QMP socket.
  returned: unless O(prune=true)
  type: str
serial_log:
  description: Path of the serial console log.
  returned: unless O(prune=true)
  type: str
pidfile:
  description: Path of the pidfile.
  returned: unless O(prune=true)
  type: str
action:
  description: What the call did - V(start), V(restart), V(stop), V(remove), or null.
  returned: unless O(prune=true)
  type: str
mode:
  description:
    - How the guest runs - V(systemd) (O(autostart) where systemd is the init system) or
      V(daemon) (daemonized; also the fallback for O(autostart) without systemd).
  returned: unless O(prune=true)
  type: str
  sample: systemd
unit:
  description: The guest's systemd unit after the call; null when it has none (V(daemon) mode).
  returned: unless O(prune=true)
  type: dict
  contains:
    name:
      description: Unit name.
      type: str
      sample: tuntap-qemu-guest-vm2.service
    path:
      description: Unit file.
      type: str
      sample: /etc/systemd/system/tuntap-qemu-guest-vm2.service
    enabled:
      description: Whether the unit is enabled (starts at boot).
      type: bool
      sample: true
    active:
      description: Whether the unit is active (the guest runs under it).
      type: bool
      sample: true
removed:
  description:
    - With O(prune=true), the guests that the call removed (in check mode, would remove), by name,
      as they were before it.
  returned: when O(prune=true)
  type: list
  elements: dict
  contains:
    name:
      description: Guest name.
      type: str
      sample: vm3
    runtime_dir:
      description: Its runtime directory (removed).
      type: str
      sample: /run/tuntap-qemu/vm3
    pid:
      description: Pid of its QEMU before the call, null when it did not run.
      type: int
      sample: 4243
    state:
      description: V(running), V(unresponsive) or V(stopped) before the call.
      type: str
      sample: running
    unit:
      description: Its systemd unit, stopped, disabled and removed; null when it had none.
      type: str
      sample: tuntap-qemu-guest-vm3.service
    stopped_by:
      description:
        - How its QEMU ended - V(powerdown), V(quit), V(killed), V(systemctl stop) or
          V(not running); null in check mode.
      type: str
      sample: powerdown
kept:
  description: With O(prune=true), the guests of ours found on the host that O(keep) names.
  returned: when O(prune=true)
  type: list
  elements: str
  sample: [vm1, vm2]
skipped:
  description:
    - With O(prune=true), runtime directories of ours left in place because the process in
      their pidfile is not the QEMU that tuntap.qemu started there but uses the directory;
      each is also a warning.
  returned: when O(prune=true)
  type: list
  elements: dict
  contains:
    name:
      description: Guest name of the directory.
      type: str
    runtime_dir:
      description: The directory.
      type: str
    pid:
      description: The process, which is left alone.
      type: int
    reason:
      description: Why it was left alone.
      type: str
runtime_root:
  description: With O(prune=true), the folder where the guests were looked for.
  returned: when O(prune=true)
  type: str
  sample: /run/tuntap-qemu
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._guest.qemu_guest_run import steps_for


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str'),
            state=dict(type='str', choices=['running', 'stopped', 'absent'], default='running'),
            nics=dict(type='list', elements='dict', default=[], options=dict(
                tap=dict(type='str'),
                vde=dict(type='path'),
                mac=dict(type='str'),
                model=dict(type='str', default='virtio-net-pci'),
                queues=dict(type='int', default=1),
            )),
            memory=dict(type='int', default=256),
            cpus=dict(type='int', default=1),
            machine=dict(type='str', default='q35'),
            accel=dict(type='str', choices=['kvm', 'tcg', 'auto'], default='auto'),
            kernel=dict(type='path'),
            initrd=dict(type='path'),
            append=dict(type='str'),
            disk=dict(type='path'),
            disk_format=dict(type='str', choices=['raw', 'qcow2']),
            binary=dict(type='str', default='qemu-system-x86_64'),
            extra_args=dict(type='list', elements='str', default=[]),
            run_as=dict(type='str'),
            runtime_dir=dict(type='path'),
            restart_on_change=dict(type='bool', default=True),
            stop_timeout=dict(type='int', default=30),
            autostart=dict(type='bool', default=False),
            runtime_root=dict(type='path', default='/run/tuntap-qemu'),
            prune=dict(type='bool', default=False),
            keep=dict(type='list', elements='str', default=[]),
        ),
        required_if=[('prune', False, ('name',))],
        supports_check_mode=True,
    )
    module_runner.run(module, steps_for(module.params))


if __name__ == '__main__':
    main()
