# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which processes hold a tap/tun device open: /proc/PID/fd links to /dev/net/tun and the
`iff:` line of their /proc/PID/fdinfo/FD.

    holders = read_holders(['tap3', 'tap4'])   # {'tap3': [Holder(4242, 'qemu-system-x86')]}

A prune removes no tap that a process holds (a running QEMU, ours or not): the tap is left
alone and named in a warning with the PID and command of each holder. The kernel's own sign
of a holder is the tap's carrier (rtnl_snapshot's `carrier`), which planning consults as well;
this module finds who it is. The fdinfo line names the device, not its namespace, so only
processes in the caller's network namespace count (a tap of the same name in another
namespace is another device). Read only when a prune has candidates, so a converge that
removes nothing never walks /proc.
"""

from __future__ import annotations

import dataclasses
import os

PROC = '/proc'
TUN_DEVICE = '/dev/net/tun'


@dataclasses.dataclass(frozen=True)
class Holder:
    pid: int
    comm: str

    def describe(self):
        return 'PID %d (%s)' % (self.pid, self.comm)


def _same_namespace(pid, own):
    try:
        info = os.stat(os.path.join(PROC, str(pid), 'ns', 'net'))
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == own


def _tun_device_names(pid):
    """The device names of the tun fds of process `pid` (its fdinfo `iff:` lines)."""
    fd_dir = os.path.join(PROC, str(pid), 'fd')
    names = set()
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return names  # gone, or a kernel thread
    for fd in fds:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) != TUN_DEVICE:
                continue
            with open(os.path.join(PROC, str(pid), 'fdinfo', fd)) as handle:
                for line in handle:
                    key, _sep, value = line.partition(':')
                    if key == 'iff' and value.strip():
                        names.add(value.strip())
        except OSError:
            continue  # closed meanwhile
    return names


def _comm(pid):
    try:
        with open(os.path.join(PROC, str(pid), 'comm')) as handle:
            return handle.read().strip()
    except OSError:
        return '?'


def read_holders(names):
    """{name: [Holder, ...]} for the devices of `names` that processes in this network
    namespace hold open; names nobody holds are left out."""
    wanted = set(names)
    if not wanted:
        return {}
    own = os.stat(os.path.join(PROC, 'self', 'ns', 'net'))
    own = (own.st_dev, own.st_ino)
    holders = {}
    for entry in sorted(os.listdir(PROC), key=lambda text: (len(text), text)):
        if not entry.isdigit():
            continue
        held = _tun_device_names(entry) & wanted
        if held and _same_namespace(entry, own):
            holder = Holder(int(entry), _comm(entry))
            for name in sorted(held):
                holders.setdefault(name, []).append(holder)
    return holders
