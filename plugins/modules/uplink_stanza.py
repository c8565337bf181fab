#!/usr/bin/python
# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: uplink_stanza
short_description: Move the admin's ifupdown stanza of the uplink out of the way, and back
version_added: 0.3.0
description:
  - In the bridged_lan topology the uplink (such as C(eth0)) becomes a port of the bridge and
    its address moves to the bridge. The admin's own lines for the uplink in
    C(/etc/network/interfaces) (C(auto eth0) or C(allow-hotplug eth0), C(iface eth0 inet static)
    with its options) would then fight at boot with the C(iface eth0 inet manual) of
    O(managed_file).
  - With O(state=taken), every line that configures the uplink is turned into a comment inside
    a marked block (C(# BEGIN tuntap.qemu uplink eth0) ... C(# END tuntap.qemu uplink eth0)) that
    says why; the original lines are kept there with a C(#ttq:) prefix. An C(auto) or C(allow-)
    line that also names other interfaces stays active for them. The admin's configuration is
    returned in RV(carry), for the bridge stanza.
  - With O(state=restored), every block of the uplink becomes the original lines again, byte for
    byte, when the host leaves bridged_lan.
  - Taken are the C(auto), C(allow-*), C(no-auto-down) and C(no-scripts) names of the uplink, its
    C(iface) stanzas of every family with their option lines, and its alias stanzas
    (C(iface eth0:1)), whose addresses would land on the bridge port; not taken are VLANs on it
    (C(iface eth0.10), another interface), C(mapping) stanzas and C(rename) lines (they give the
    uplink its name); a warning names what needs a look.
author:
  - tuntap.qemu developers (!UNKNOWN)
extends_documentation_fragment:
  - tuntap.qemu.attributes
  - tuntap.qemu.attributes.all
options:
  uplink:
    description: The uplink, such as V(eth0).
    type: str
    required: true
  bridge:
    description: The bridge the uplink is a port of, such as V(br0); named in the block's comment.
    type: str
  state:
    description:
      - V(taken) moves the uplink's lines into the marked block, V(restored) brings them back.
    type: str
    choices: [taken, restored]
    default: taken
  path:
    description:
      - The interfaces file whose lines are moved. A missing file is nothing to do.
      - Relative C(source) and C(source-directory) paths in it are relative to its folder.
    type: path
    default: /etc/network/interfaces
  managed_file:
    description:
      - The collection's own interfaces file, which configures the uplink as a bridge port; it is
        not counted as another definition of the uplink, and the block's comment names it.
    type: path
    default: /etc/network/interfaces.d/tuntap-qemu
  backup:
    description:
      - Keep a timestamped copy of O(path) the first time the uplink's lines are taken (when it
        has no block of the uplink yet).
    type: bool
    default: true
notes:
  - With O(state=taken) the module fails, changing nothing, when a file that O(path) sources
    (other than O(managed_file)) configures the uplink too; it names the files. Only the lines
    of O(path) are moved.
  - Taking a taken file changes nothing; lines for the uplink that were added outside the block
    since are taken too.
seealso:
  - module: tuntap.qemu.bridge_port
  - module: tuntap.qemu.uplink_info
'''

EXAMPLES = r'''
- name: The admin's eth0 stanza moves out of the way of the bridge br0
  tuntap.qemu.uplink_stanza:
    uplink: eth0
    bridge: br0
  register: uplink_stanza

- name: The bridge stanza gets the admin's options
  ansible.builtin.debug:
    msg: "{{ uplink_stanza.carry.bridge_options }}"

- name: Leaving bridged_lan, the admin's eth0 stanza comes back
  tuntap.qemu.uplink_stanza:
    uplink: eth0
    state: restored
'''

RETURN = r'''
carry:
  description:
    - The admin's configuration of the uplink, to carry to the bridge; with O(state=restored),
      what came back (an empty carry when nothing did).
  returned: success
  type: dict
  contains:
    uplink:
      description: The uplink.
      type: str
      sample: eth0
    method:
      description: The method of its first C(iface ... inet) stanza; null without one.
      type: str
      sample: static
    allow:
      description: The C(auto) and C(allow-*) keywords that named the uplink, in file order.
      type: list
      elements: str
      sample: [allow-hotplug]
    bridge_options:
      description:
        - The option lines of its C(inet) stanzas as [name, value], in order, without the address
          options (C(address), C(netmask), C(broadcast), C(gateway), C(network), C(pointopoint),
          C(hwaddress)), which the plan owns.
      type: list
      elements: list
      sample: [[mtu, "9000"], [dns-nameservers, 10.44.0.1 9.9.9.9]]
    port_options:
      description: The L2 options (C(mtu), C(hwaddress)) that stay on the uplink as a bridge port.
      type: list
      elements: list
      sample: [[mtu, "9000"]]
    inet6:
      description: Every C(iface ... inet6) stanza of the uplink, with all its options.
      type: list
      elements: dict
      sample: [{"method": "static", "options": [[address, "2001:db8::50/64"]]}]
    warnings:
      description: What could not be carried or needs a look (also shown as warnings).
      type: list
      elements: str
backup_file:
  description: The backup copy of O(path), when one was made.
  returned: when a backup was made
  type: str
  sample: /etc/network/interfaces.12345.2026-12-01@15:00:00~
msg:
  description: What was done.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tuntap.qemu.plugins.module_utils import module_runner
from ansible_collections.tuntap.qemu.plugins.module_utils.uplink_stanza_module import UplinkStanzaSteps


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uplink=dict(type='str', required=True),
            bridge=dict(type='str'),
            state=dict(type='str', choices=['taken', 'restored'], default='taken'),
            path=dict(type='path', default='/etc/network/interfaces'),
            managed_file=dict(type='path', default='/etc/network/interfaces.d/tuntap-qemu'),
            backup=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    module_runner.run(module, UplinkStanzaSteps())


if __name__ == '__main__':
    main()
