# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""IP forwarding: the runtime value in /proc/sys (per network namespace) and the
persistent one in a file of /etc/sysctl.d, computed from one desired state."""

from __future__ import annotations

import os

from ansible_collections.tuntap.qemu.plugins.module_utils import files

PROC_SYS = '/proc/sys'

FORWARDING_KEYS = {
    'ipv4': 'net.ipv4.ip_forward',
    'ipv6': 'net.ipv6.conf.all.forwarding',
}

HEADER = ('# Managed by the tuntap.qemu ip_forward module; local changes are overwritten.\n'
          '# Loaded at boot by systemd-sysctl / procps (sysctl --system).\n')


def key_path(key, proc_sys=PROC_SYS):
    return os.path.join(proc_sys, *key.split('.'))


def desired_values(families, enabled):
    """{sysctl key: '1'|'0'} for the requested families."""
    value = '1' if enabled else '0'
    return dict((FORWARDING_KEYS[family], value) for family in families)


def render_sysctl_file(values):
    """The text of our sysctl.d file for these values (keys in a stable order)."""
    lines = ['%s = %s\n' % (key, values[key]) for key in sorted(values)]
    return HEADER + ''.join(lines)


def read_runtime(keys, proc_sys=PROC_SYS):
    """{key: current value or None when the key does not exist (e.g. IPv6 disabled)}."""
    values = {}
    for key in keys:
        try:
            with open(key_path(key, proc_sys), 'r') as handle:
                values[key] = handle.read().strip()
        except FileNotFoundError:
            values[key] = None
    return values


def write_runtime(values, proc_sys=PROC_SYS):
    for key in sorted(values):
        with open(key_path(key, proc_sys), 'w') as handle:
            handle.write(values[key] + '\n')


def plan_forwarding(params, proc_sys=PROC_SYS):
    """Compare the host with the request.

    Returns a dict: errors, runtime_before/after ({key: value}), file_before/after
    (text or None), runtime_changed, file_changed.
    """
    want = desired_values(params['family'], params['state'] == 'enabled')
    plan = {'errors': [], 'runtime_before': {}, 'runtime_after': {},
            'file_before': None, 'file_after': None,
            'runtime_changed': False, 'file_changed': False}
    if params['runtime']:
        have = read_runtime(want, proc_sys)
        for key, value in sorted(have.items()):
            if value is None:
                plan['errors'].append('family: %s forwarding is not available on this host '
                                      '(%s does not exist; is IPv6 disabled?)'
                                      % (key.split('.')[1], key_path(key, proc_sys)))
        plan['runtime_before'] = have
        plan['runtime_after'] = want
        plan['runtime_changed'] = have != want
    if params['persistent']:
        path = params['sysctl_file']
        if not os.path.isabs(path):
            plan['errors'].append('sysctl_file: %r is not an absolute path' % path)
            return plan
        if os.path.isdir(path):
            plan['errors'].append('sysctl_file: %r is a directory' % path)
            return plan
        plan['file_before'] = files.read_text(path)
        plan['file_after'] = render_sysctl_file(want)
        plan['file_changed'] = plan['file_before'] != plan['file_after']
    return plan
