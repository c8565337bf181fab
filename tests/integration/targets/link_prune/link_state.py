# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network namespace it runs in, from `ip -details -json` dumps of links, addresses and
routes, as one JSON object the playbooks compare with what they expect:

    links      {ifname: {kind, alias, master, state}}   (state: UP flag or not)
    addresses  {ifname: sorted ADDRESS/PREFIX}           (without IPv6 link-local)
    routes     sorted 'DST [via GW] dev DEV [proto P] [onlink]' of the main table,
               IPv4 and IPv6, without IPv6 link-local and multicast routes

Test-only; reads, changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys


def ip_json(*args):
    output = subprocess.run(['ip', '-details', '-json'] + list(args), check=True,
                            capture_output=True, text=True, env={'LC_ALL': 'C', 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'}).stdout
    return json.loads(output or '[]')


def route_text(route):
    text = route['dst']
    if route.get('gateway'):
        text += ' via %s' % route['gateway']
    text += ' dev %s' % route.get('dev')
    if route.get('protocol') not in (None, 'kernel'):
        text += ' proto %s' % route['protocol']
    if 'onlink' in route.get('flags', []):
        text += ' onlink'
    return text


def main():
    links = {}
    for link in ip_json('link', 'show'):
        links[link['ifname']] = {
            'kind': link.get('linkinfo', {}).get('info_kind'),
            'alias': link.get('ifalias'),
            'master': link.get('master'),
            'state': 'up' if 'UP' in link.get('flags', []) else 'down',
        }
    addresses = {}
    for link in ip_json('address', 'show'):
        addresses[link['ifname']] = sorted(
            '%s/%d' % (info['local'], info['prefixlen']) for info in link.get('addr_info', [])
            if not info['local'].lower().startswith('fe80:'))
    routes = []
    for family in ('-4', '-6'):
        for route in ip_json(family, 'route', 'show', 'table', 'main'):
            if route['dst'].startswith(('fe80:', 'ff00:', 'multicast')):
                continue
            routes.append(route_text(route))
    json.dump({'links': links, 'addresses': addresses, 'routes': sorted(routes)}, sys.stdout,
              sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
