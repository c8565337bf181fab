# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vde_switch parameters -> a validated Request (pure: no host state read here)."""

from __future__ import annotations

import dataclasses
import os
import re
import typing

from ansible_collections.tuntap.qemu.plugins.module_utils import names

RUNTIME_DIR = '/run/tuntap-qemu/vde'
UNIT_DIR = '/etc/systemd/system'
PIDFILE_NAME = 'vde_switch.pid'
MGMT_NAME = 'vde_switch.mgmt'
_MODE = re.compile(r'^0?[0-7]{3}$')


def default_socket(tap, runtime_dir=RUNTIME_DIR):
    """The switch's socket directory: RUNTIME_DIR/<tap>.ctl (what the fleet plan names)."""
    return os.path.join(runtime_dir, '%s.ctl' % tap)


@dataclasses.dataclass(frozen=True)
class Request:
    """What the switch should be. wanted False: no switch of ours (state=absent)."""

    wanted: bool
    tap: typing.Optional[str]
    socket: typing.Optional[str]
    group: typing.Optional[str]
    mode: str
    service: str
    unit_dir: str
    runtime_dir: str

    @property
    def pidfile(self):
        return os.path.join(self.runtime_dir, PIDFILE_NAME)

    @property
    def mgmt_socket(self):
        """The management socket (root only, 0600): `port/print` lists the switch's ports."""
        return os.path.join(self.runtime_dir, MGMT_NAME)

    @property
    def dir_mode(self):
        """The socket directory's mode: `mode` with the search (x) bit for each class that may
        read or write, since the guests' QEMU makes its own data socket in that directory."""
        value = int(self.mode, 8)
        for shift in (6, 3, 0):
            if value & (0o6 << shift):
                value |= 0o1 << shift
        return '0%03o' % value


def parse_request(params):
    """(Request, errors) from the module parameters."""
    errors = []
    wanted = params['state'] == 'present'
    tap = params.get('tap')
    runtime_dir = params.get('runtime_dir') or RUNTIME_DIR
    if tap is not None:
        error = names.ifname_error('tap', tap)
        if error:
            errors.append(error)
    elif wanted:
        errors.append('tap: required with state=present')
    mode = str(params.get('mode') or '0770').strip()
    if not _MODE.match(mode):
        errors.append("mode: %r is not an octal mode such as '0770'" % params.get('mode'))
        mode = '0770'
    else:
        mode = '0%s' % mode[-3:]
    socket = params.get('socket') or (default_socket(tap, runtime_dir) if tap else None)
    if socket is not None and not os.path.isabs(socket):
        errors.append('socket: %r must be an absolute path' % socket)
    group = params.get('group')
    if group is not None and not str(group).strip():
        errors.append('group: must not be empty')
    for option in ('runtime_dir', 'unit_dir'):
        value = params.get(option)
        if value and not os.path.isabs(value):
            errors.append('%s: %r must be an absolute path' % (option, value))
    request = Request(wanted=wanted, tap=tap, socket=socket, group=group, mode=mode,
                      service=params.get('service') or 'auto',
                      unit_dir=params.get('unit_dir') or UNIT_DIR, runtime_dir=runtime_dir)
    return request, errors
