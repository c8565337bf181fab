# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mark that says a link is ours: its interface alias (IFLA_IFALIAS).

tap_device and bridge_port set it on every link they create or manage as present (a link
they adopt by name gets it too); prune removes only links that carry it, so what is not
ours - an admin's tap7 or bridge, whatever its name - is never removed or changed.

    tuntap.qemu:tap                  a tap/tun device of tap_device
    tuntap.qemu:bridge               a bridge of bridge_port
    tuntap.qemu:bridge uplink=eth0   a bridged_lan bridge that took over eth0: removing
                                     it gives eth0 its addresses and routes back
    tuntap.qemu:bridge uplink=eth0 dhcp
                                     ... and eth0's DHCP client: removing it moves the
                                     client back to eth0 too

`ip link show` prints it as `alias ...`; `ip link set DEV alias ''` removes it (the admin
taking the link over). Pure functions over the snapshot's `alias` values.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

PREFIX = 'tuntap.qemu'
TAP = 'tap'
BRIDGE = 'bridge'


@dataclasses.dataclass(frozen=True)
class Mark:
    """A parsed mark: what made the link (TAP, BRIDGE or '' for a bare `tuntap.qemu`) and,
    for a bridged_lan bridge, the uplink it took over."""
    role: str
    uplink: Optional[str] = None
    dhcp: bool = False

    def text(self):
        text = '%s:%s' % (PREFIX, self.role) if self.role else PREFIX
        if self.uplink:
            text += ' uplink=%s' % self.uplink
            if self.dhcp:
                text += ' dhcp'
        return text


def tap_mark():
    return Mark(TAP).text()


def bridge_mark(uplink=None, dhcp=False):
    return Mark(BRIDGE, uplink or None, bool(dhcp and uplink)).text()


def parse_mark(alias):
    """The Mark of an alias, or None when the alias is not ours (None, '', anything else)."""
    if not isinstance(alias, str):
        return None
    words = alias.split()
    if not words or not (words[0] == PREFIX or words[0].startswith(PREFIX + ':')):
        return None
    role = words[0][len(PREFIX) + 1:]
    uplink = None
    dhcp = False
    for word in words[1:]:
        if word.startswith('uplink='):
            uplink = word[len('uplink='):] or None
        elif word == 'dhcp':
            dhcp = True
    return Mark(role, uplink, dhcp and uplink is not None)


def is_ours(link):
    """Whether a snapshot record carries our mark."""
    return parse_mark(link.get('alias')) is not None


def mark_uplink(link):
    """The uplink a marked bridge took over, or None."""
    mark = parse_mark(link.get('alias'))
    return mark.uplink if mark else None


def mark_dhcp(link):
    """Whether a marked bridge took over its uplink's DHCP client."""
    mark = parse_mark(link.get('alias'))
    return bool(mark and mark.dhcp)
