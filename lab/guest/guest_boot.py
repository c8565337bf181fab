# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot the tuntap.qemu test guest and read what it reports on its serial console.

The guest (lab/guest/build_guest.py) takes its network settings from the kernel command
line (kernel_append), or from DHCP when it names no address, and prints TTQ-* lines (lab/guest/init.sh), which parse_serial turns
into a dict. qemu_argv is the plain command line the tests use; the qemu_guest module
builds its own.
"""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

RESULT_TAGS = ('TTQ-LEASE', 'TTQ-BOOT', 'TTQ-LISTEN', 'TTQ-LOOKUP', 'TTQ-RESULT', 'TTQ-FETCH',
               'TTQ-UNREACH', 'TTQ-ERROR', 'TTQ-DONE')
LINE = re.compile(r'(TTQ-(?:LEASE|BOOT|LISTEN|LOOKUP|RESULT|FETCH|UNREACH|ERROR|DONE))((?: [a-z][a-z0-9_]*=\S*)*)\s*$')


def kernel_append(name, address=None, gateway=None, ping=(), mac=None, after='poweroff',
                  tries=None, console='ttyS0', lookup=(), listen=None, fetch=(), dhcp_tries=None,
                  address6=None, gateway6=None, ip6_wait=None, unreach=(), unreach_after=None):
    """The kernel command line for a guest: serial console plus the ttq.* settings.

    unreach: targets that must not answer (ttq.unreach: one short ping each, last), tried once
    the guest has been up unreach_after seconds.

    name None leaves the name to the DHCP hostname; address None makes the guest ask DHCP.
    address6 (ADDRESS/PREFIX) None leaves its IPv6 address to SLAAC, waited for ip6_wait
    seconds (the guest's default: 10 when a ping target is IPv6, else 0).
    panic=-1 reboots at once on a panic, which with QEMU's -no-reboot ends QEMU.
    """
    if after not in ('poweroff', 'stay'):
        raise ValueError("after: %r is not one of 'poweroff', 'stay'" % (after,))
    words = ['console=%s' % console, 'quiet', 'panic=-1']
    if name:
        words.append('ttq.name=%s' % name)
    if address:
        words.append('ttq.ip=%s' % address)
    if gateway:
        words.append('ttq.gw=%s' % gateway)
    if address6:
        words.append('ttq.ip6=%s' % address6)
    if gateway6:
        words.append('ttq.gw6=%s' % gateway6)
    if ip6_wait is not None:
        words.append('ttq.ip6_wait=%d' % ip6_wait)
    if ping:
        words.append('ttq.ping=%s' % ','.join(ping))
    if unreach:
        words.append('ttq.unreach=%s' % ','.join(unreach))
    if unreach_after is not None:
        words.append('ttq.unreach_after=%d' % unreach_after)
    if lookup:
        words.append('ttq.lookup=%s' % ','.join(lookup))
    if listen is not None:
        words.append('ttq.listen=%d' % listen)
    if fetch:
        words.append('ttq.fetch=%s' % ','.join(fetch))
    if mac:
        words.append('ttq.mac=%s' % mac.lower())
    if tries is not None:
        words.append('ttq.tries=%d' % tries)
    if dhcp_tries is not None:
        words.append('ttq.dhcp_tries=%d' % dhcp_tries)
    if after != 'poweroff':
        words.append('ttq.after=%s' % after)
    for word in words:
        if not word or any(char.isspace() for char in word):
            raise ValueError('kernel command line word %r is empty or has white space' % word)
    return ' '.join(words)


def qemu_argv(kernel, initrd, append, serial_log, nics, memory=256, accel='tcg',
              machine='q35', qemu='qemu-system-x86_64', pidfile=None, qmp_socket=None):
    """QEMU's argv for the test guest. nics: [(tap name, mac)], one virtio-net-pci each.

    With pidfile, QEMU daemonizes and writes its pid there.
    """
    argv = [qemu, '-machine', machine, '-accel', accel, '-m', str(memory),
            '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
            '-serial', 'file:%s' % serial_log,
            '-kernel', kernel, '-initrd', initrd, '-append', append]
    for index, (tap, mac) in enumerate(nics):
        argv += ['-netdev', 'tap,id=n%d,ifname=%s,script=no,downscript=no' % (index, tap),
                 '-device', 'virtio-net-pci,netdev=n%d,mac=%s' % (index, mac)]
    if qmp_socket:
        argv += ['-qmp', 'unix:%s,server=on,wait=off' % qmp_socket]
    if pidfile:
        argv += ['-daemonize', '-pidfile', pidfile]
    return argv


def parse_serial(text):
    """TTQ-* lines of a serial log -> {'lease': {...} or None, 'boot': {...}, 'listen': {...} or
    None, 'lookups': {query: {...}}, 'results': {target: {...}}, 'fetches': {url: {...}},
    'unreach': {target: {...}}, 'errors': [...], 'done': {...} or None}; a fetch's body is
    %-decoded, rtt_ms a float or None. Other lines (kernel messages) and an unfinished last
    line, which the guest may still be writing, are ignored."""
    report = {'lease': None, 'boot': None, 'listen': None, 'lookups': {}, 'results': {},
              'fetches': {}, 'unreach': {}, 'errors': [], 'done': None}
    for line in text.split('\n')[:-1]:
        match = LINE.search(line)
        if not match:
            continue
        fields = dict(item.split('=', 1) for item in match.group(2).split())
        tag = match.group(1)
        if tag == 'TTQ-LEASE':
            report['lease'] = fields
        elif tag == 'TTQ-BOOT':
            report['boot'] = fields
        elif tag == 'TTQ-LISTEN':
            report['listen'] = fields
        elif tag == 'TTQ-LOOKUP':
            report['lookups'][fields.get('query')] = fields
        elif tag == 'TTQ-FETCH':
            fields['body'] = unquote(fields.get('body', ''))
            report['fetches'][fields.get('url')] = fields
        elif tag in ('TTQ-RESULT', 'TTQ-UNREACH'):
            if fields.get('rtt_ms') not in (None, '-'):
                fields['rtt_ms'] = float(fields['rtt_ms'])
            else:
                fields['rtt_ms'] = None
            report['results' if tag == 'TTQ-RESULT' else 'unreach'][fields.get('target')] = fields
        elif tag == 'TTQ-ERROR':
            report['errors'].append(fields)
        else:
            report['done'] = fields
    return report


def wait_for_done(serial_log, timeout, still_running=None, poll=0.1):
    """Poll serial_log until the guest prints TTQ-DONE; returns (report, seconds waited).

    still_running: a callable; when it returns False (QEMU ended) waiting stops early.
    The report's 'done' is None when the guest did not finish in time.
    """
    start = time.monotonic()
    while True:
        # Checked before reading, so that the last read sees all QEMU wrote before it ended.
        running = still_running is None or still_running()
        try:
            with open(serial_log, errors='replace') as handle:
                report = parse_serial(handle.read())
        except FileNotFoundError:
            report = parse_serial('')
        waited = time.monotonic() - start
        if report['done'] is not None or not running or waited >= timeout:
            return report, waited
        time.sleep(poll)
