# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IPv6 state of this network namespace as bridge_slaac.yml checks it, as JSON:

    {"addresses": {LINK: [{"address": "ADDR/LEN", "kernel": bool, "dynamic": bool}, ...]},
     "ra_routes": {LINK: ["default via fe80::1", "fd00:45::/64"]},
     "routes": {LINK: ["fd00:45::/64", ...]}}

addresses: the global ones; kernel: made by the kernel from a router advertisement or from
such an address (iproute2 shows mngtmpaddr without permanence, or temporary); dynamic: not
permanent (or a finite lifetime). ra_routes: proto ra, and proto kernel with an expiry (an advertised prefix).
Read with `ip -json` (test code; the collection reads netlink itself). Changes nothing.
"""

import json
import subprocess
import sys

FOREVER = 4294967295


def ip_json(*argv):
    out = subprocess.run(['ip', '-json'] + list(argv), check=True, stdout=subprocess.PIPE,
                         universal_newlines=True, env={'LC_ALL': 'C', 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'}).stdout
    return json.loads(out or '[]')


def main():
    addresses = {}
    for link in ip_json('-6', 'address', 'show', 'scope', 'global'):
        for info in link.get('addr_info', []):
            if 'local' not in info:
                continue
            # iproute2's `dynamic`: not IFA_F_PERMANENT (a kernel SLAAC address is not, even
            # when the router advertises an infinite lifetime, as dnsmasq's ra-only does)
            dynamic = bool(info.get('dynamic')) or info.get('valid_life_time', FOREVER) != FOREVER
            kernel = bool(info.get('temporary')) or (bool(info.get('mngtmpaddr')) and dynamic)
            addresses.setdefault(link['ifname'], []).append({
                'address': '%s/%s' % (info['local'], info['prefixlen']), 'kernel': kernel,
                'dynamic': dynamic})
    ra_routes, routes = {}, {}
    for route in ip_json('-6', 'route', 'show', 'table', 'main'):
        text = route['dst'] + (' via %s' % route['gateway'] if route.get('gateway') else '')
        if route['dst'].startswith('fe80:') or route['dst'].startswith('ff00:'):
            continue
        routes.setdefault(route.get('dev'), []).append(text)
        if route.get('protocol') == 'ra' or (route.get('protocol') == 'kernel' and 'expires' in route):
            ra_routes.setdefault(route.get('dev'), []).append(text)
    json.dump({'addresses': addresses, 'ra_routes': ra_routes, 'routes': routes}, sys.stdout, sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
