# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Attributes shared by the modules of tuntap.qemu."""

    # Descriptions of the attributes; use together with one of the support levels below.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change.
      - Reading the state of the host happens once per call; nothing is written when nothing differs.
'''

    # Full support of check mode, diff mode and idempotency.
    ALL = r'''
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
'''

    # Managed-node requirements of the netlink modules.
    NETLINK = r'''
options: {}
requirements:
  - Linux with netlink (run inside the network namespace to manage; the C(tuntap.qemu.netns) connection does that for namespaces).
  - pyroute2 on the managed node (Debian package C(python3-pyroute2) 0.7.2 or newer, or PyPI C(pyroute2)).
  - netaddr on the managed node (Debian package C(python3-netaddr) 0.8.0 or newer, or PyPI C(netaddr)).
  - CAP_NET_ADMIN (run as root or with become).
'''
