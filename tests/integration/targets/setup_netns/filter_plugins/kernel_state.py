# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn `ip -json` dumps of a namespace into what the integration tests compare.

Loaded through ANSIBLE_FILTER_PLUGINS, which setup_netns/netns.sh sets; test-only.
"""

from __future__ import annotations

import json


def _load(dump):
    return json.loads(dump) if isinstance(dump, str) else dump


def ip_link_map(dump):
    """`ip -json [-details] link show` -> {ifname: link}."""
    return dict((link['ifname'], link) for link in _load(dump))


def ip_address_map(dump):
    """`ip -json address show` -> {ifname: sorted ['ADDRESS/PREFIX', ...]}.

    IPv6 link-local addresses are left out, as the modules leave them alone.
    """
    result = {}
    for link in _load(dump):
        result[link['ifname']] = sorted(
            '%s/%d' % (info['local'], info['prefixlen']) for info in link.get('addr_info', [])
            if not info['local'].lower().startswith('fe80:'))
    return result


def ip_links_settled(dump):
    """True when every link's operstate agrees with its flags.

    The kernel updates operstate through linkwatch, up to a second after the carrier
    changed; a tap that a module attached to (to create it or change its owner) has its
    carrier for that moment. Until linkwatch has run, a dump is a picture in motion.
    """
    for link in _load(dump):
        flags = link.get('flags', [])
        operstate = link.get('operstate')
        if 'UP' not in flags:
            settled = operstate == 'DOWN'
        elif 'LOWER_UP' in flags:
            settled = operstate in ('UP', 'UNKNOWN')
        else:
            settled = operstate in ('DOWN', 'LOWERLAYERDOWN')
        if not settled:
            return False
    return True


def _without_timers(value):
    if isinstance(value, dict):
        return dict((key, _without_timers(item)) for key, item in value.items()
                    if not key.endswith('_timer'))
    if isinstance(value, list):
        return [_without_timers(item) for item in value]
    return value


def kernel_fingerprint(dumps):
    """Several `ip -json` dumps as one canonical text, for "nothing changed" comparisons.

    Bridge countdown timers (gc_timer, hello_timer, ...) are dropped: they tick while the
    configuration stays the same.
    """
    return json.dumps([_without_timers(_load(dump)) for dump in dumps], sort_keys=True)


class FilterModule:
    """Kernel state filters for the tuntap.qemu integration tests."""

    def filters(self):
        return {
            'ip_link_map': ip_link_map,
            'ip_address_map': ip_address_map,
            'ip_links_settled': ip_links_settled,
            'kernel_fingerprint': kernel_fingerprint,
        }
