# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""IP forwarding: the runtime value in /proc/sys (per network namespace) and the
persistent one in a file of /etc/sysctl.d, computed from one desired state."""

from __future__ import annotations

import fnmatch
import os

from ansible_collections.tuntap.qemu.plugins.module_utils import files, module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils._links import router_solicit

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


def dropped_keys(file_text, want):
    """Pure: the forwarding keys that our file's text turns on (= 1) and `want` does not name."""
    ours = set(FORWARDING_KEYS.values())
    return sorted(set(key for key, value in assignments(file_text) if key in ours and value == '1' and key not in want))


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
    file_before = None
    if params['persistent'] and os.path.isabs(params['sysctl_file']) and not os.path.isdir(params['sysctl_file']):
        file_before = files.read_text(params['sysctl_file'])
    # A family our file turned on that the request no longer lists goes off at runtime too: the
    # file is ours, so that forwarding was ours (an admin's is not in it); the file is rewritten
    # without it, and the boot would not turn it on either.
    runtime_want = dict(want)
    runtime_want.update((key, '0') for key in dropped_keys(file_before, want))
    if params['runtime']:
        have = read_runtime(runtime_want, proc_sys)
        for key in [key for key, value in have.items() if value is None and key not in want]:
            # A dropped family whose key is gone (IPv6 turned off since) is off already.
            del have[key], runtime_want[key]
        for key, value in sorted(have.items()):
            if value is None:
                plan['errors'].append('family: %s forwarding is not available on this host '
                                      '(%s does not exist; is IPv6 disabled?)'
                                      % (key.split('.')[1], key_path(key, proc_sys)))
        plan['runtime_before'] = have
        plan['runtime_after'] = runtime_want
        plan['runtime_changed'] = have != runtime_want
    if params['persistent']:
        path = params['sysctl_file']
        if not os.path.isabs(path):
            plan['errors'].append('sysctl_file: %r is not an absolute path' % path)
            return plan
        if os.path.isdir(path):
            plan['errors'].append('sysctl_file: %r is a directory' % path)
            return plan
        plan['file_before'] = file_before
        plan['file_after'] = render_sysctl_file(want)
        plan['file_changed'] = plan['file_before'] != plan['file_after']
    return plan


# ---------------------------------------------------------------- IPv6 forwarding off

# While IPv6 forwards, the kernel ignores router advertisements on links with accept_ra 1 (the
# default); once it stops, it takes them again, but it solicits only when a link comes up, so a
# link of the LAN (a bridged_lan br0 made while the host still routed IPv6) would wait for the
# router's next unsolicited advertisement (200-600 s on a typical LAN) for its SLAAC address
# and default route. The module asks the routers of those links at once: one solicitation per
# link, which changes nothing on the host by itself (the kernel does the rest, as at link-up).
IFF_UP = 0x1
SYS_CLASS_NET = '/sys/class/net'
SOLICIT_WAIT = 1.0


def ipv6_forwarding_turned_off(before, after):
    key = FORWARDING_KEYS['ipv6']
    return before.get(key) == '1' and after.get(key) == '0'


def ra_links(proc_sys=PROC_SYS, sys_class_net=SYS_CLASS_NET):
    """The links that take router advertisements now: up, not loopback, not a bridge port
    (a port's frames go to its bridge), accept_ra 1 or 2. Sorted names."""
    conf = os.path.join(proc_sys, 'net', 'ipv6', 'conf')
    try:
        names = os.listdir(conf)
    except OSError:
        return []
    links = []
    for name in sorted(names):
        if name in ('all', 'default', 'lo') or os.path.exists(os.path.join(sys_class_net, name, 'brport')):
            continue
        try:
            with open(os.path.join(conf, name, 'accept_ra')) as handle:
                accept_ra = int(handle.read().strip())
            with open(os.path.join(sys_class_net, name, 'flags')) as handle:
                flags = int(handle.read().strip(), 16)
        except (OSError, ValueError):
            continue
        if accept_ra >= 1 and flags & IFF_UP:
            links.append(name)
    return links


def solicit_routers(links, solicit=None):
    """One router solicitation from each link; a link that cannot send (no usable link-local
    address yet: the kernel solicits by itself after its duplicate address detection) or that
    went away is skipped. Returns the links it was sent from."""
    if solicit is None:
        solicit = router_solicit.solicit
    sent = []
    for name in links:
        try:
            if solicit(name, wait=SOLICIT_WAIT):
                sent.append(name)
        except OSError:
            continue
    return sent


# ---------------------------------------------------------------- the boot

# Where systemd-sysctl.service reads *.conf at boot, in priority order: a name in an earlier
# folder hides the same name in a later one; all names are then applied in lexical order, so
# a later name wins a key (Debian's /etc/sysctl.d/99-sysctl.conf links to /etc/sysctl.conf).
BOOT_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d')

# Keys that set the same value: writing net.ipv4.conf.all.forwarding sets ip_forward.
ALIASES = {
    'net.ipv4.ip_forward': ('net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding'),
    'net.ipv6.conf.all.forwarding': ('net.ipv6.conf.all.forwarding',),
}


def boot_order(listing, dirs=BOOT_DIRS):
    """Pure: the paths systemd-sysctl applies, in order. listing maps a folder to its names."""
    chosen = {}
    for folder in dirs:
        for name in listing.get(folder, []):
            if name.endswith('.conf') and name not in chosen:
                chosen[name] = os.path.join(folder, name)
    return [chosen[name] for name in sorted(chosen)]


def assignments(text):
    """Pure: [(key, value)] of a sysctl.d file (keys with dots; a leading '-' dropped)."""
    result = []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line or line[0] in '#;' or '=' not in line:
            continue
        key, value = line.split('=', 1)
        key = key.strip().lstrip('-')
        if '/' in key and ('.' not in key or key.index('/') < key.index('.')):
            key = key.replace('/', '.')
        result.append((key, value.strip()))
    return result


def boot_overrides(ordered, our_path, values):
    """Pure: warnings for files that systemd-sysctl applies after ours and that set one of
    our keys (or an alias) to another value, so the boot would not end with ours.

    ordered  [(path, text)] in the order of boot_order
    values   {key: value} that our file sets
    """
    warnings = []
    seen_ours = False
    for path, text in ordered:
        if path == our_path:
            seen_ours = True
            continue
        if not seen_ours:
            continue
        for key, value in assignments(text):
            for ours, wanted in sorted(values.items()):
                if any(fnmatch.fnmatchcase(alias, key) for alias in ALIASES.get(ours, (ours,))) \
                        and value != wanted:
                    warnings.append('%s sets %s = %s after %s at boot (systemd-sysctl applies '
                                    'the files in name order), so %s is not %s after a '
                                    'reboot; change that file or name sysctl_file so that it '
                                    'sorts after it' % (path, key, value, our_path, ours, wanted))
    return warnings


def read_boot_overrides(our_path, values, dirs=BOOT_DIRS):
    """boot_overrides for the files of this host ([] when our file is not in `dirs`)."""
    if os.path.dirname(our_path) not in dirs:
        return []
    listing = {}
    for folder in dirs:
        try:
            listing[folder] = os.listdir(folder)
        except OSError:
            continue
    ordered = []
    for path in boot_order(listing, dirs):
        ordered.append((path, files.read_text(path) if path != our_path else None))
    if our_path not in [path for path, _text in ordered]:
        ordered.append((our_path, None))
        ordered.sort(key=lambda item: os.path.basename(item[0]))
    return boot_overrides(ordered, our_path, values)


class ForwardingSteps(module_runner.ModuleSteps):
    """ip_forward for module_runner: the runtime and persistent facets, planned together."""

    def parse(self, module):
        params = module.params
        if not params['family']:
            raise module_runner.Refused(['family: give at least one of ipv4, ipv6'])
        return params

    def plan(self, module, request, state):
        plan = plan_forwarding(request)
        module_runner.refuse(plan['errors'])
        if request['persistent']:
            wanted = desired_values(request['family'], request['state'] == 'enabled')
            for warning in read_boot_overrides(request['sysctl_file'], wanted):
                module.warn(warning)
        return ForwardingPlan(plan)

    def apply(self, module, plan):
        params = module.params
        if plan.facets['runtime_changed']:
            write_runtime(plan.facets['runtime_after'])
            if ipv6_forwarding_turned_off(plan.facets['runtime_before'], plan.facets['runtime_after']):
                solicit_routers(ra_links())
        if plan.facets['file_changed']:
            plan.backup_file = files.write_atomic(module, params['sysctl_file'],
                                                  plan.facets['file_after'], backup=params['backup'])

    def result(self, module, request, plan, applied):
        facets = plan.facets
        result = {'changed': plan.changed}
        if plan.backup_file:
            result['backup_file'] = plan.backup_file
        if request['runtime']:
            result['runtime'] = facets['runtime_after']
        if request['persistent']:
            result['persistent'] = {'path': request['sysctl_file'], 'content': facets['file_after'],
                                    'changed': facets['file_changed']}
        if module._diff:
            result['diff'] = [
                {'before_header': 'runtime (/proc/sys)', 'after_header': 'runtime (/proc/sys)',
                 'before': facets['runtime_before'], 'after': facets['runtime_after']},
            ]
            if request['persistent']:
                result['diff'].append(files.text_diff(request['sysctl_file'], facets['file_before'],
                                                      facets['file_after']))
        return result


class ForwardingPlan:
    """plan_forwarding()'s facets, and the backup made when applying."""

    def __init__(self, facets):
        self.facets = facets
        self.backup_file = None

    @property
    def changed(self):
        return self.facets['runtime_changed'] or self.facets['file_changed']
