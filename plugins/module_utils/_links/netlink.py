# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pyroute2, imported on first use.

`import pyroute2` costs about 0.1-0.2 s, and only writes (applying.py) and route reading
(reading.read_routes) need it; a no-change converge reads links and addresses through
rtnl_snapshot and never imports it. Whether it is installed is checked up front, without
importing it (module_runner.require_libraries), so a module without it still fails before
anything changes.
"""

from __future__ import annotations

import importlib.util


def available():
    """Whether pyroute2 can be imported (found on the path, not imported)."""
    return importlib.util.find_spec('pyroute2') is not None


def open_netlink():
    """An IPRoute socket in the current network namespace."""
    from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    return IPRoute()


def errors():
    """The exceptions a pyroute2 request raises: (NetlinkError, OSError)."""
    from pyroute2.netlink.exceptions import NetlinkError  # pylint: disable=import-outside-toplevel
    return (NetlinkError, OSError)


def dump_interrupted():
    """The exception pyroute2 raises for a dump that a concurrent change interrupted
    (NLM_F_DUMP_INTR; pyroute2 0.7 raises it, 0.9 returns such a dump as it is)."""
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted  # pylint: disable=import-outside-toplevel
    return (NetlinkDumpInterrupted,)
