# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu_guest parameters -> validated guest spec -> the action that converges it.

Validation covers the errors QEMU hides or reports badly: a VDE switch that is not there, a tap that does not exist
(QEMU as root would silently create an unconnected one), a tap that is down or held by
another process, a tap the guest's user may not open, no NICs at all, a missing image.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat

from ansible_collections.tuntap.qemu.plugins.module_utils import names
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_config, qemu

GUEST_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')


def guest_spec(params):
    """(guest, errors) from the module parameters; no kernel state needed."""
    errors = []
    name = params['name']
    if not GUEST_NAME.match(name or ''):
        errors.append('name: %r must be 1-63 characters of letters, digits, ., _ and -, '
                      'starting with a letter or digit' % name)
    guest = {
        'name': name,
        'binary': params['binary'],
        'machine': params['machine'],
        'memory': params['memory'],
        'cpus': params['cpus'],
        'kernel': params.get('kernel'),
        'initrd': params.get('initrd'),
        'append': params.get('append'),
        'disk': params.get('disk'),
        'disk_format': params.get('disk_format'),
        'extra_args': params.get('extra_args') or [],
        'nics': [],
    }
    if not 16 <= params['memory'] <= 4194304:
        errors.append('memory: %r MiB is outside 16-4194304' % params['memory'])
    if not 1 <= params['cpus'] <= 288:
        errors.append('cpus: %r is outside 1-288' % params['cpus'])
    if params['state'] == 'running':
        if not guest['kernel'] and not guest['disk']:
            errors.append('kernel or disk: a running guest needs a kernel or a disk image to boot')
        for option in ('kernel', 'initrd', 'disk'):
            path = guest.get(option)
            if path and not os.path.isfile(path):
                errors.append('%s: %s does not exist or is not a file' % (option, path))
        if guest.get('initrd') and not guest.get('kernel'):
            errors.append('initrd: needs kernel')
        if guest.get('append') and not guest.get('kernel'):
            errors.append('append: needs kernel')
        if not params.get('nics'):
            errors.append('nics: a running guest needs at least one NIC on a tap device or a VDE switch '
                          "(QEMU's old 'Invalid vlan (0) with no nics' error)")
    taps, sockets = [], []
    for index, nic in enumerate(params.get('nics') or []):
        path = 'nics[%d]' % index
        tap, vde = nic.get('tap'), nic.get('vde')
        if tap is not None and vde is not None:
            errors.append('%s: tap and vde are mutually exclusive (a NIC is on a tap or on a VDE switch)' % path)
        elif tap is None and vde is None:
            errors.append('%s: needs tap (a tap device) or vde (the socket of a VDE switch)' % path)
        if tap is not None:
            error = names.ifname_error('%s.tap' % path, tap)
            if error:
                errors.append(error)
            taps.append(tap)
        if vde is not None:
            if not os.path.isabs(vde):
                errors.append('%s.vde: %r must be the absolute path of a VDE switch socket' % (path, vde))
            if (nic.get('queues') or 1) > 1:
                errors.append('%s.queues: a VDE NIC has one queue' % path)
            sockets.append(vde)
        mac = nic.get('mac')
        if mac:
            mac, error = names.parse_mac('%s.mac' % path, mac)
            if error:
                errors.append(error)
        else:
            mac = guest_config.stable_mac(name or '', index)
        guest['nics'].append({'tap': tap if vde is None else None, 'vde': vde, 'mac': mac,
                              'model': nic['model'], 'queues': nic.get('queues') or 1})
    errors.extend(names.duplicate_errors('nics[].tap', taps))
    errors.extend(names.duplicate_errors('nics[].mac', [nic['mac'] for nic in guest['nics']]))
    return guest, errors


def resolve_run_as(path, user):
    """(uid, gid, [groups]) of the user QEMU runs as, or (None, error)."""
    if user is None:
        return None, None
    uid, error = names.resolve_user(path, user)
    if error:
        return None, error
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None, '%s: user id %d has no passwd entry' % (path, uid)
    groups = [g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem]
    return (uid, entry.pw_gid, groups), None


def tap_errors(snapshot, guest, run_as, own_pid):
    """Errors about the guest's taps in the kernel state `snapshot` (_links.reading.read_snapshot)."""
    errors = []
    for index, nic in enumerate(guest['nics']):
        if nic.get('tap') is None:
            continue  # a VDE NIC: vde_errors()
        path = 'nics[%d].tap' % index
        link = snapshot.get(nic['tap'])
        if link is None:
            errors.append('%s: tap %r does not exist; create it first (tuntap.qemu.tap_device). '
                          'QEMU running as root would create a new tap that is connected to '
                          'nothing' % (path, nic['tap']))
            continue
        if link['kind'] != 'tun' or link.get('mode') != 'tap':
            what = link.get('mode') or link['kind'] or 'physical device'
            errors.append('%s: %r is a %s, not a tap device' % (path, nic['tap'], what))
            continue
        if link['state'] != 'up':
            errors.append('%s: tap %r is down; bring it up first (tap_device link_state=up)'
                          % (path, nic['tap']))
        if 'carrier' in link:
            held = link['carrier']
        else:
            held = link['operstate'] not in ('down', 'notpresent')
        if own_pid is None and held and not link.get('multi_queue'):
            errors.append('%s: tap %r is already in use by another process (another guest?): '
                          'it has carrier, so a process holds it open (Device or resource busy)'
                          % (path, nic['tap']))
        if nic['queues'] > 1 and not link.get('multi_queue'):
            errors.append('%s: %d queues need a multi_queue tap; %r is single-queue'
                          % (path, nic['queues'], nic['tap']))
        if run_as is not None and run_as[0] != 0:
            uid, gid, groups = run_as
            owner, group = link.get('owner'), link.get('group')
            allowed = (owner == uid) or (group is not None and (group == gid or group in groups))
            if (owner is not None or group is not None) and not allowed:
                errors.append('%s: tap %r belongs to uid %s / gid %s; user %d may not open it'
                              % (path, nic['tap'], owner, group, uid))
            elif owner is None and group is None:
                errors.append('%s: tap %r has no owner or group, so only root may open it; set '
                              'tap_device user= for uid %d' % (path, nic['tap'], uid))
    return errors


def vde_errors(guest, is_socket=None):
    """Errors about the guest's VDE NICs: a switch listens at SOCKET/ctl (vde_switch's control
    socket in its socket folder), else QEMU would fail to start with a less clear error."""
    is_socket = is_socket or _is_socket
    errors = []
    for index, nic in enumerate(guest['nics']):
        if nic.get('vde') and not is_socket(os.path.join(nic['vde'], 'ctl')):
            errors.append('nics[%d].vde: no VDE switch at %s (no control socket %s/ctl); start one '
                          'first (tuntap.qemu.vde_switch)' % (index, nic['vde'], nic['vde']))
    return errors


def _is_socket(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def plan_action(desired_state, observed, argv, restart_on_change=True):
    """'start', 'restart', 'stop', 'remove' or None for the observed guest."""
    state = observed['state']
    if desired_state == 'running':
        if state == 'running':
            if restart_on_change and observed['argv'] is not None and observed['argv'] != argv:
                return 'restart'
            return None
        if state == 'unresponsive':
            return 'restart'
        return 'start'
    if desired_state == 'stopped':
        return 'stop' if state != 'stopped' else None
    return 'remove'


def runtime_paths(params):
    """qemu.paths() of the guest's runtime directory: runtime_dir, else RUNTIME_ROOT/NAME."""
    root = params.get('runtime_root') or qemu.RUNTIME_ROOT
    directory = params.get('runtime_dir') or os.path.join(root, params['name'])
    return qemu.paths(directory)
