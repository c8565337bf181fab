#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: ip_forward
short_description: IPv4 and IPv6 forwarding, now and after a reboot
version_added: 0.1.0
description:
  - Turns routing between interfaces on or off, the C(net.ipv4.ip_forward=1) step of
    every routed or NATed QEMU host.
  - Two facets of one desired state, each compared and reported on its own
    (in RV(runtime) and RV(persistent) and in the diff) -
    the runtime value in C(/proc/sys), which belongs to the network namespace the
    module runs in, and a file in C(/etc/sysctl.d) that C(systemd-sysctl) or
    C(sysctl --system) loads at boot.
  - For IPv6 it sets C(net.ipv6.conf.all.forwarding), which the kernel copies to every
    interface and to the default for new ones.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
options:
  state:
    description: Whether forwarding is on (V(enabled)) or off (V(disabled)).
    type: str
    choices: [enabled, disabled]
    default: enabled
  family:
    description:
      - The address families to manage; the others are left alone, except that a family
        O(sysctl_file) turned on before and O(family) no longer names (with O(persistent=true))
        is turned off at runtime as well, since that forwarding was this module's (an admin's
        forwarding is not in the file) and the rewritten file would not bring it back at boot.
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4]
  runtime:
    description: Manage the running value in C(/proc/sys).
    type: bool
    default: true
  persistent:
    description:
      - Manage the file O(sysctl_file). It holds exactly the keys of O(family) with the
        value of O(state), so use one file per task.
    type: bool
    default: true
  sysctl_file:
    description: Path of the persistent file.
    type: path
    default: /etc/sysctl.d/60-tuntap-qemu-forwarding.conf
  backup:
    description: Keep a timestamped copy of O(sysctl_file) before changing it.
    type: bool
    default: false
notes:
  - With the C(tuntap.qemu.netns) connection, C(/etc/netns/NAME/sysctl.d) (when it exists) is
    what the module sees as C(/etc/sysctl.d), so each namespace host can keep its own file.
  - At boot C(systemd-sysctl.service) applies the C(*.conf) files of C(/etc/sysctl.d),
    C(/run/sysctl.d), C(/usr/local/lib/sysctl.d) and C(/usr/lib/sysctl.d) in name order, before
    C(networking.service) brings up the interfaces; a later name wins a key. When
    O(sysctl_file) is in one of those folders and a file applied after it sets one of its keys
    (or C(net.ipv4.conf.all.forwarding), an alias of C(net.ipv4.ip_forward)) to another value,
    the module warns, naming that file. Debian's C(/etc/sysctl.d/99-sysctl.conf) is
    C(/etc/sysctl.conf), whose forwarding lines are commented out by default.
  - When IPv6 forwarding goes off at runtime, each link that takes router advertisements (up, not
    a bridge port, C(accept_ra) 1 or 2) sends one router solicitation, so that its SLAAC address
    and default route come back now and not at the router's next advertisement (the kernel
    solicits only when a link comes up).
  - A firewall may still drop forwarded packets; see the masquerade module for NAT.
seealso:
  - module: tuntap.qemu.tap_device
'''

EXAMPLES = r'''
- name: Route between the guests' taps and the uplink
  tuntap.qemu.ip_forward:

- name: IPv4 and IPv6, now only (no file)
  tuntap.qemu.ip_forward:
    family: [ipv4, ipv6]
    persistent: false

- name: Turn forwarding off again
  tuntap.qemu.ip_forward:
    state: disabled
'''

RETURN = r'''
runtime:
  description: The runtime values of the managed keys after the call (predicted in check mode).
  returned: when O(runtime=true)
  type: dict
  sample: {"net.ipv4.ip_forward": "1"}
persistent:
  description: The persistent file after the call.
  returned: when O(persistent=true)
  type: dict
  contains:
    path:
      description: Path of the file.
      type: str
      sample: /etc/sysctl.d/60-tuntap-qemu-forwarding.conf
    content:
      description: Its content.
      type: str
    changed:
      description: Whether the file was (or in check mode would be) written.
      type: bool
backup_file:
  description: The backup copy, when one was made.
  returned: when a backup was made
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils.sysctl import ForwardingSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['enabled', 'disabled'], default='enabled'),
            family=dict(type='list', elements='str', choices=['ipv4', 'ipv6'], default=['ipv4']),
            runtime=dict(type='bool', default=True),
            persistent=dict(type='bool', default=True),
            sysctl_file=dict(type='path', default='/etc/sysctl.d/60-tuntap-qemu-forwarding.conf'),
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    module_runner.run(module, ForwardingSteps())


if __name__ == '__main__':
    main()
