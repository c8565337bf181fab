# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Options and notes shared by the NAT modules (masquerade, port_forward)."""

    DOCUMENTATION = r'''
options:
  backend:
    description:
      - Which firewall interface carries the rules.
      - V(nftables) keeps them in the table C(inet tuntap_qemu) of their own, changed
        through the JSON interface of C(nft) in one atomic batch; nothing outside that table
        is ever written through C(nft).
      - V(iptables) writes them with C(iptables)/C(ip6tables) (nat table C(POSTROUTING),
        C(PREROUTING), C(OUTPUT), filter table C(FORWARD)), each checked with C(iptables -C) first.
      - V(auto) picks what the host already uses - V(nftables) when the table
        C(inet tuntap_qemu) exists; V(iptables) when C(nft) is missing, or when the
        C(iptables) program is the legacy variant and the legacy tables hold rules or a
        policy other than ACCEPT; else V(nftables).
    type: str
    choices: [auto, nftables, iptables]
    default: auto
  foreign_forward:
    description:
      - What to do when a forward chain of another table has policy drop (Docker sets
        C(iptables -P FORWARD DROP), which with iptables-nft is the nftables chain
        C(ip filter FORWARD)). An accept in our table cannot override a drop in another
        table, so the guests' forwarded traffic dies there.
      - V(ignore) leaves other tables alone and warns, naming the table, the chain and this option.
      - V(accept) inserts the forward rules of this task (the same scoped rules as in our
        table, with their comments) at the top of C(DOCKER-USER) when that chain exists,
        else of C(FORWARD), with C(iptables-nft)/C(ip6tables-nft), each checked with C(-C)
        first, and removes them again with O(state=absent). Unrelated forwarded traffic
        stays dropped. Only the iptables-nft tables C(ip filter) and C(ip6 filter) are
        handled; a drop policy in a native nftables table is reported in a warning.
      - Used by the V(nftables) backend; the V(iptables) backend puts its forward rules into
        C(FORWARD) (or C(DOCKER-USER)) already.
      - These rules are runtime state only; the next converge puts them back.
    type: str
    choices: [accept, ignore]
    default: ignore
  allow_missing_interface:
    description:
      - Accept an interface name that does not exist (yet), such as an uplink that
        appears later. Rules match interfaces by name, so they start to work when it appears.
    type: bool
    default: false
  persistent:
    description:
      - Make the rules come back at boot, from the same rules as the running ones.
      - With V(nftables) the file O(nft_file) holds the whole table (the rules of every task,
        as they are after this call) and replaces the table atomically each time it is
        loaded, so loading it twice changes nothing. At boot the systemd unit
        C(tuntap-qemu-nft.service) loads it (see O(boot_unit)), whether or not the
        C(nftables) service is enabled (Debian installs it disabled).
      - O(nftables_conf) includes the file too, through a marker-delimited block appended to
        the admin's file (every other line stays as it is; a minimal file is created when
        there is none). So where the admin enabled the C(nftables) service, its start and
        C(systemctl restart nftables) or C(reload) (Debian's default file begins with
        C(flush ruleset)) bring the table back too. C(systemctl stop nftables) runs
        C(nft flush ruleset), which removes our table as well; it comes back with the next
        start, the next boot or the next converge.
      - With V(iptables) the executable script O(hook_file) re-adds every missing rule when
        ifupdown brings an interface up, so also at boot (C(networking.service) runs
        C(ifup -a), which brings up C(lo) and every C(auto) interface, and C(ifup@.service) each
        C(allow-hotplug) one). It always exits 0, so a rule that fails to load cannot fail the
        interface; the failure is printed (to the journal of the unit that ran ifup).
      - When no rule is left, the file is removed and so are the include block and the unit.
      - V(false) leaves the files as they are (neither written nor removed).
    type: bool
    default: true
  boot_unit:
    description:
      - The systemd unit that loads O(nft_file) at boot (V(nftables) backend, O(persistent=true)),
        C(tuntap-qemu-nft.service) in O(systemd_unit_dir), with C(Type=oneshot),
        C(ExecStart=nft -f) O(nft_file), ordered after C(nftables.service) and before
        C(network-pre.target), enabled by the symlink that C(systemctl enable) makes
        (C(sysinit.target.wants/tuntap-qemu-nft.service)), written and removed with the file.
        The first line of the unit marks it as ours; a unit of that name without the mark
        fails the call.
      - Where that systemd runs (O(systemd_unit_dir) is C(/etc/systemd/system), systemd is PID 1
        and this is its network namespace), a changed unit is followed by
        C(systemctl daemon-reload), an inactive unit is started (it loads the same table
        again, so C(systemctl is-active) says C(active) as after a boot), and the unit is
        stopped before it is removed (it has no C(ExecStop), so the rules stay until the batch
        removes them). Its state is part of the diff and of the change.
      - V(auto) manages it when systemd is PID 1 (C(/run/systemd/system) exists) and the
        module runs in PID 1's network namespace (a unit of PID 1's systemd loads the table
        there, not into another namespace); else nothing is written and nothing is removed.
      - V(systemd) manages it in any case (an image or chroot, the namespace lab with its own
        O(systemd_unit_dir)); V(none) leaves it alone.
    type: str
    choices: [auto, systemd, none]
    default: auto
    version_added: 0.2.0
  systemd_unit_dir:
    description: The folder of the unit of O(boot_unit).
    type: path
    default: /etc/systemd/system
    version_added: 0.2.0
  nft_file:
    description: The persistent file of the V(nftables) backend.
    type: path
    default: /etc/nftables.d/tuntap-qemu.nft
  nftables_conf:
    description: The nftables configuration loaded at boot, which gets the include line.
    type: path
    default: /etc/nftables.conf
  hook_file:
    description: The ifupdown hook of the V(iptables) backend.
    type: path
    default: /etc/network/if-up.d/tuntap-qemu
  backup:
    description: Keep a timestamped copy of each persistent file before changing it.
    type: bool
    default: false
  commands:
    description:
      - The programs to run; a name is searched in E(PATH) and in C(/sbin), C(/usr/sbin)
        and C(/usr/local/sbin), a path is used as it is. A missing program fails the call
        with the name of the Debian package that ships it (C(nftables) or C(iptables)).
    type: dict
    suboptions:
      nft:
        description: The nft program (V(nftables) backend).
        type: str
        default: nft
      iptables:
        description: The iptables program (V(iptables) backend, and the legacy check of V(auto)).
        type: str
        default: iptables
      ip6tables:
        description: The ip6tables program (V(iptables) backend, IPv6 rules).
        type: str
        default: ip6tables
      iptables_nft:
        description: The program for O(foreign_forward=accept) in C(ip filter).
        type: str
        default: iptables-nft
      ip6tables_nft:
        description: The program for O(foreign_forward=accept) in C(ip6 filter).
        type: str
        default: ip6tables-nft
requirements:
  - Linux with nftables (Debian package C(nftables)) for the V(nftables) backend, or iptables
    (Debian package C(iptables)) for the V(iptables) backend and for O(foreign_forward=accept).
  - netaddr on the managed node (Debian package C(python3-netaddr) 0.8.0 or newer, or PyPI C(netaddr)).
  - CAP_NET_ADMIN (run as root or with become).
notes:
  - Every rule carries a comment that is its identity and spells out its parameters, for
    example C(tuntap.qemu masquerade 192.168.0.0/24 oif eth0 | nat). A call adds and
    deletes only rules whose key (the part before C(|)) belongs to it, so any number of
    tasks share the table; do not edit the rules by hand. The list form of each module owns
    every key of its kind (all masquerade rules, or all port forwards) instead.
  - Switching O(backend) removes the rules of the call from the backend not chosen, when its
    program is installed - at runtime (one nft batch, or one iptables command per rule) and
    from its persistent files (the O(hook_file), or the O(nft_file), its include and the boot
    unit when no rule is left there). Where C(iptables) is iptables-nft, the accept rules that
    O(foreign_forward=accept) keeps in C(ip filter) are left to it.
  - Run it inside the network namespace to manage, for example with the C(tuntap.qemu.netns)
    connection. C(/etc/netns/NAME/...) entries are what the module then sees in C(/etc),
    but an atomic write cannot replace a single bind-mounted file; point O(nftables_conf)
    and O(nft_file) into C(/etc/netns/NAME/) instead.
'''
