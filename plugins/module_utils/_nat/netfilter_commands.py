# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nft and iptables programs: find them, run them with an argv list and LC_ALL=C."""

from __future__ import annotations

import os

# Which Debian package ships each program (what an error tells the admin to install).
DEBIAN_PACKAGES = {
    'nft': 'nftables',
    'iptables': 'iptables',
    'ip6tables': 'iptables',
    'iptables_nft': 'iptables',
    'ip6tables_nft': 'iptables',
}

DEFAULT_COMMANDS = {
    'nft': 'nft',
    'iptables': 'iptables',
    'ip6tables': 'ip6tables',
    'iptables_nft': 'iptables-nft',
    'ip6tables_nft': 'ip6tables-nft',
}

C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C'}


class NetfilterError(Exception):
    """A netfilter program is missing or failed; the message says which and why."""


class Commands:
    """Resolves the programs named in the module's `commands` option and runs them."""

    def __init__(self, module, overrides=None):
        self.module = module
        self.names = dict(DEFAULT_COMMANDS)
        for name, value in (overrides or {}).items():
            if value:
                self.names[name] = value
        self._paths = {}

    def find(self, name):
        """Absolute path of program `name` (a key of DEFAULT_COMMANDS), or None."""
        if name not in self._paths:
            self._paths[name] = self._lookup(self.names[name])
        return self._paths[name]

    def _lookup(self, program):
        if '/' in program:
            return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
        try:
            # PATH, then /sbin, /usr/sbin and /usr/local/sbin.
            return self.module.get_bin_path(program, required=False)
        except ValueError:
            return None

    def require(self, name, why):
        path = self.find(name)
        if path is None:
            raise NetfilterError(
                "%s: the program %r was not found (searched PATH and the sbin folders); "
                "install the Debian package %s, or name the program in commands.%s"
                % (why, self.names[name], DEBIAN_PACKAGES[name], name))
        return path

    def sibling(self, name, suffix):
        """Path of the program next to `name` with `suffix` appended (iptables -> iptables-save)."""
        path = self.find(name)
        if path is None:
            return None
        candidate = path + suffix
        return candidate if os.access(candidate, os.X_OK) else None

    def run(self, argv, data=None):
        """Run argv (a list, never a shell string); returns (rc, stdout, stderr)."""
        return self.module.run_command(argv, data=data, binary_data=False,
                                       environ_update=C_LOCALE, check_rc=False)

    def run_checked(self, argv, data=None, what=None):
        rc, out, err = self.run(argv, data=data)
        if rc != 0:
            raise NetfilterError('%s failed (exit %d): %s' % (
                what or ' '.join(argv), rc, (err or out).strip()))
        return out
