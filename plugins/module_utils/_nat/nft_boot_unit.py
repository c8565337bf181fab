# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd unit that loads our nft file at boot: tuntap-qemu-nft.service.

Debian 12 installs nftables.service disabled, so the include block in /etc/nftables.conf
alone brings nothing back at boot. Our own unit loads /etc/nftables.d/tuntap-qemu.nft
(which replaces the table inet tuntap_qemu as a whole, so loading it twice is harmless)
after nftables.service, whose default /etc/nftables.conf starts with `flush ruleset`, and
before network-pre.target, so the table is there before ifupdown brings the interfaces up
(the rules match interface names, which need not exist yet).

Enabling is the symlink that `systemctl enable` makes (<unit_dir>/sysinit.target.wants/
tuntap-qemu-nft.service -> <unit_dir>/tuntap-qemu-nft.service): written like any other
persistent file, so check mode and diff can predict it and a host without a running
systemd (an image, a chroot, the namespace lab) gets the same files.

    mode, reason = choose_mode(requested, systemd_booted(), same_network_namespace_as_init())
    plan = plan_unit(mode, unit_dir, nft_program, nft_file, present, current)
"""

from __future__ import annotations

import os
import re

UNIT_NAME = 'tuntap-qemu-nft.service'
DEFAULT_UNIT_DIR = '/etc/systemd/system'
WANTED_BY = 'sysinit.target'
SYSTEMD_RUNTIME_DIR = '/run/systemd/system'
MODES = ('auto', 'systemd', 'none')
MARK = '# Managed by tuntap.qemu'

UNIT_TEMPLATE = '''\
# Managed by tuntap.qemu (masquerade and port_forward modules); local changes are
# overwritten, and the unit goes when the table's last rule does.
# Loads the NAT table inet tuntap_qemu at boot, whether or not nftables.service is
# enabled: after it (its default /etc/nftables.conf starts with "flush ruleset" and
# includes the same file), before the network is configured. The file replaces the table
# as a whole, so loading it again changes nothing. No ExecStop: stopping this unit, or
# shutting down, leaves the rules as they are.
[Unit]
Description=tuntap.qemu NAT table for the QEMU guest networks (nft table inet tuntap_qemu)
DefaultDependencies=no
Wants=network-pre.target
After=nftables.service
Before=network-pre.target shutdown.target
Conflicts=shutdown.target
RequiresMountsFor={nft_dir}

[Service]
Type=oneshot
RemainAfterExit=yes
StandardInput=null
ExecStart={exec_start}
ExecReload={exec_start}

[Install]
WantedBy={wanted_by}
'''

_PLAIN = re.compile(r'^[A-Za-z0-9_./:@+=,-]+$')


# ---------------------------------------------------------------- where a unit makes sense

def systemd_booted(runtime_dir=SYSTEMD_RUNTIME_DIR):
    """Whether systemd is PID 1: the test of sd_booted(3), /run/systemd/system exists."""
    return os.path.isdir(runtime_dir)


def same_network_namespace_as_init(self_ns='/proc/self/ns/net', init_ns='/proc/1/ns/net'):
    """Whether this process runs in PID 1's network namespace (None when unreadable).

    A unit of PID 1's systemd loads the table into that namespace at boot; a module that
    manages another namespace (the lab, the tests) must not install one."""
    try:
        return os.stat(self_ns).st_ino == os.stat(init_ns).st_ino
    except OSError:
        return None


def choose_mode(requested, booted, same_netns):
    """('systemd' or 'none', reason).  Pure: the inputs are the two checks above."""
    if requested == 'systemd':
        return 'systemd', 'boot_unit=systemd'
    if requested == 'none':
        return 'none', 'boot_unit=none'
    if not booted:
        return 'none', 'systemd is not PID 1 (%s does not exist)' % SYSTEMD_RUNTIME_DIR
    if same_netns is False:
        return 'none', ("the module runs in a network namespace other than PID 1's, where a "
                        "systemd unit would not load the table")
    if same_netns is None:
        return 'none', "PID 1's network namespace could not be compared with this one"
    return 'systemd', 'systemd is PID 1'


# ---------------------------------------------------------------- rendering

def systemd_quote(word):
    """One word of an ExecStart= line: plain, or in double quotes; % doubled (specifiers)."""
    word = word.replace('%', '%%')
    if _PLAIN.match(word):
        return word
    return '"%s"' % word.replace('\\', '\\\\').replace('"', '\\"')


def render_unit(nft_program, nft_file):
    """The unit's text for `nft_program -f nft_file`."""
    exec_start = ' '.join(systemd_quote(word) for word in (nft_program, '-f', nft_file))
    return UNIT_TEMPLATE.format(nft_dir=systemd_quote(os.path.dirname(nft_file) or '/'),
                                exec_start=exec_start, wanted_by=WANTED_BY)


def unit_path(unit_dir):
    return os.path.join(unit_dir, UNIT_NAME)


def link_path(unit_dir):
    """The symlink `systemctl enable` makes for WantedBy=sysinit.target."""
    return os.path.join(unit_dir, WANTED_BY + '.wants', UNIT_NAME)


def is_ours(text):
    return text is not None and text.startswith(MARK)


# ---------------------------------------------------------------- planning

def plan_unit(mode, unit_dir, nft_program, nft_file, present, current):
    """Pure: the unit file and its enable link after the call.

    mode        'systemd' or 'none' (choose_mode)
    present     whether the table keeps rules (the nft file exists after the call)
    current     {'unit': text or None, 'link': symlink target, '' for a non-link, or None}
    Returns {'errors', 'unit': {'path', 'before', 'after', 'changed'},
             'link': {'path', 'before', 'after', 'changed'}} or None for mode 'none'.
    """
    if mode != 'systemd':
        return None
    path, link = unit_path(unit_dir), link_path(unit_dir)
    errors = []
    if current['unit'] is not None and not is_ours(current['unit']):
        errors.append('boot_unit: %s exists and is not managed by tuntap.qemu (its first line '
                      'is not %r); move it away or set boot_unit=none' % (path, MARK))
    if current['link'] == '':
        errors.append('boot_unit: %s exists and is not a symlink; remove it or set '
                      'boot_unit=none' % link)
    unit_after = render_unit(nft_program, nft_file) if present else None
    link_after = path if present else None
    return {
        'errors': errors,
        'unit': {'path': path, 'before': current['unit'], 'after': unit_after,
                 'changed': current['unit'] != unit_after},
        'link': {'path': link, 'before': current['link'], 'after': link_after,
                 'changed': current['link'] != link_after},
    }


def read_current(unit_dir):
    """{'unit': text or None, 'link': target, '' (not a symlink) or None (absent)}."""
    try:
        with open(unit_path(unit_dir), 'r', encoding='utf-8') as handle:
            unit = handle.read()
    except FileNotFoundError:
        unit = None
    link = link_path(unit_dir)
    if os.path.islink(link):
        target = os.readlink(link)
    elif os.path.lexists(link):
        target = ''
    else:
        target = None
    return {'unit': unit, 'link': target}


def link_diff(item):
    """A diff entry for the enable link."""
    def text(target):
        return '' if target is None else 'symlink -> %s\n' % target
    return {'before_header': item['path'] + ('' if item['before'] is not None else ' (absent)'),
            'after_header': item['path'] + ('' if item['after'] is not None else ' (absent)'),
            'before': text(item['before']), 'after': text(item['after'])}


def write_link(item):
    """Make (or remove) the enable link as planned."""
    path = item['path']
    if os.path.islink(path):
        os.unlink(path)
    if item['after'] is None:
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    os.symlink(item['after'], path)
