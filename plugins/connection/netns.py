# Copyright (c) 2025 tuntap.qemu developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks on the controller inside a Linux network namespace
description:
  - Runs tasks on the Ansible controller, like the builtin C(ansible.builtin.local) connection,
    but every command is started through C(ip netns exec NAME), so modules, C(ansible.builtin.raw),
    fact gathering and pipelined modules see only the links, addresses, routes, sysctls and
    firewall of the named network namespace.
  - The namespace must exist beforehand as a named namespace (C(ip netns add NAME), which
    creates C(/run/netns/NAME)). The connection fails with a message naming the namespace
    when it does not exist. It does not create or delete namespaces.
  - The filesystem is shared with the controller. Per-host configuration files come from
    the standard bind mounts of C(ip netns exec) - every entry of C(/etc/netns/NAME/) is
    mounted over the entry of the same name in C(/etc) for the command, when that entry
    exists in C(/etc). For example C(/etc/netns/hv1/sysctl.d) appears as C(/etc/sysctl.d)
    and C(/etc/netns/hv1/network) as C(/etc/network) inside namespace C(hv1), so files
    that modules write there persist per namespace.
  - C(ip netns exec) also mounts a fresh C(/sys) for the namespace, so C(/sys/class/net)
    lists only the namespace's links.
  - File transfers (put_file, fetch_file) run in the controller's own view of the filesystem,
    as with the local connection; paths below a bind-mounted C(/etc) entry are translated to
    C(/etc/netns/NAME/...), so M(ansible.builtin.fetch) reads the same file a module would.
  - This connection is meant for tests, the lab and molecule scenarios that stand in for real
    hypervisors. Real hosts are managed over C(ansible.builtin.ssh).
author:
  - tuntap.qemu developers (!UNKNOWN)
version_added: 0.1.0
options:
  remote_addr:
    description:
      - Name of the network namespace to run in, as listed by C(ip netns list).
      - It must be a plain name, without C(/).
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_netns_name
  netns_ip_command:
    description:
      - The C(ip) program (from iproute2) that runs C(ip netns exec).
      - A command name is searched on E(PATH) and then in C(/usr/sbin) and C(/sbin); a path
        is used as given.
    type: str
    default: ip
    ini:
      - section: netns_connection
        key: ip_command
    env:
      - name: ANSIBLE_NETNS_IP_COMMAND
    vars:
      - name: ansible_netns_ip_command
  become_success_timeout:
    description:
      - Number of seconds to wait for become to succeed when enabled.
      - The default is used if the configured value is less than 1.
      - Passed to the builtin local connection, which uses it from ansible-core 2.19 on.
    type: int
    default: 10
    vars:
      - name: ansible_local_become_success_timeout
      - name: ansible_netns_become_success_timeout
  become_strip_preamble:
    description:
      - Strip internal become output preceding command execution. Disable for additional diagnostics.
      - Passed to the builtin local connection, which uses it from ansible-core 2.19 on.
    type: bool
    default: true
    vars:
      - name: ansible_local_become_strip_preamble
      - name: ansible_netns_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
notes:
  - C(ip netns exec) needs C(CAP_SYS_ADMIN), so Ansible must run as root on the controller
    (for example inside a CI container or a lab VM). C(become) works as with the local
    connection and changes the user inside the namespace.
  - The remote user is ignored, as with the local connection; commands run as the user
    that started Ansible.
  - Only the network namespace (and the C(/etc/netns) and C(/sys) mounts) differ from the
    controller. Processes, users and the rest of the filesystem are the controller's, so
    never run M(ansible.builtin.reboot) or power management through this connection.
seealso:
  - name: ip-netns(8)
    description: How C(ip netns exec) enters a namespace and bind-mounts C(/etc/netns/NAME).
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
"""

EXAMPLES = r"""
# Inventory: each host is a namespace created beforehand with `ip netns add hv1`.
# [hypervisors]
# hv1 ansible_connection=tuntap.qemu.netns
# hv2 ansible_connection=tuntap.qemu.netns ansible_netns_name=lab-hv2

- name: Show the links of a lab hypervisor
  hosts: hv1
  gather_facts: true
  tasks:
    - name: Only the namespace's interfaces are listed
      ansible.builtin.debug:
        var: ansible_facts.interfaces
"""

import os
import shlex
import shutil

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

display = Display()

NETNS_RUN_DIR = '/run/netns'
ETC_DIR = '/etc'
NETNS_ETC_DIR = '/etc/netns'
IP_COMMAND_FALLBACK_DIRS = ('/usr/sbin', '/sbin')


class Connection(LocalConnection):
    """Local connection whose commands run inside a named network namespace."""

    transport = 'tuntap.qemu.netns'
    has_pipelining = True

    def _namespace_name(self) -> str:
        """The configured namespace name, checked to name an existing namespace."""
        name = to_text(self.get_option('remote_addr') or '')
        if not name or '/' in name or name in ('.', '..') or '\0' in name:
            raise AnsibleConnectionFailure(
                'tuntap.qemu.netns: %r is not a network namespace name; set ansible_host or '
                'ansible_netns_name to the name shown by "ip netns list"' % (name,))
        if not os.path.exists(os.path.join(NETNS_RUN_DIR, name)):
            raise AnsibleConnectionFailure(
                'tuntap.qemu.netns: network namespace "%s" does not exist (no %s); '
                'create it first with "ip netns add %s"' % (name, os.path.join(NETNS_RUN_DIR, name), name))
        return name

    def _ip_command(self) -> str:
        """Path of the ip program, from the netns_ip_command option."""
        configured = self.get_option('netns_ip_command') or 'ip'
        found = shutil.which(configured)
        if not found and os.sep not in configured:
            search_path = os.pathsep.join(IP_COMMAND_FALLBACK_DIRS)
            found = shutil.which(configured, path=search_path)
        if not found:
            raise AnsibleConnectionFailure(
                'tuntap.qemu.netns: cannot find the ip command %r (set netns_ip_command); '
                'iproute2 is needed to run "ip netns exec"' % (configured,))
        return found

    def _connect(self) -> Connection:
        if not self._connected:
            name = self._namespace_name()
            display.vvv('ESTABLISH NETNS CONNECTION TO NAMESPACE: %s' % name, host=name)
        return super(Connection, self)._connect()

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        """Run cmd through 'ip netns exec NAME SHELL -c cmd'; stdin, stdout and stderr pass through."""
        self._connect()
        if not isinstance(cmd, (str, bytes)):
            cmd = shlex.join(to_text(arg) for arg in cmd)
        shell = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else '/bin/sh'
        argv = [self._ip_command(), 'netns', 'exec', self._namespace_name(), shell, '-c', to_text(cmd)]
        # The local connection starts a string through its shell; shlex.join keeps every
        # argument of argv one word, so the namespace prefix is never re-split or expanded.
        return super(Connection, self).exec_command(shlex.join(argv), in_data=in_data, sudoable=sudoable)

    def _controller_path(self, path: str) -> str:
        """The controller path that path names inside the namespace.

        'ip netns exec' bind-mounts every entry of /etc/netns/NAME over the /etc entry of
        the same name when that exists, so /etc/network/x inside is /etc/netns/NAME/network/x.
        """
        path = to_text(path)
        if not os.path.isabs(path):
            return path
        parts = os.path.normpath(path).split(os.sep)  # ['', 'etc', entry, ...]
        if len(parts) < 3 or parts[1] != 'etc':
            return path
        namespace_etc = os.path.join(NETNS_ETC_DIR, self._namespace_name())
        entry = parts[2]
        if os.path.lexists(os.path.join(namespace_etc, entry)) and os.path.lexists(os.path.join(ETC_DIR, entry)):
            return os.path.join(namespace_etc, *parts[2:])
        return path

    def put_file(self, in_path: str, out_path: str) -> None:
        """Copy a controller file to a path as seen inside the namespace."""
        super(Connection, self).put_file(in_path, self._controller_path(out_path))

    def fetch_file(self, in_path: str, out_path: str) -> None:
        """Copy a file, as seen inside the namespace, to the controller."""
        self._connect()
        source = self._controller_path(in_path)
        display.vvv('FETCH %s TO %s' % (source, out_path), host=self._namespace_name())
        # local.fetch_file would call self.put_file and translate the destination; the
        # destination is on the controller, so only the source is translated here.
        LocalConnection.put_file(self, source, out_path)
