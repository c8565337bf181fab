# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT at boot on the real Debian 12 host: the checks of issue 8 for the NAT topologies.

Written by the NAT side for run_stage.py (which owns when they run); every function takes a
realhost.Vm (only its ssh()) and returns [(check name, ok, detail)], for
`TopologyRun.check(name, ok, detail)`. Nothing here changes the host except
admin_enables_nftables() and restart_nftables(), which do what an admin would.

For routed_nat and bridged_nat (the table inet tuntap_qemu exists), in this order:

  after the converge     after_converge(vm, subnets)
                         nat6_checks(vm, networks6, nat6, where) (issue 13, after the converge
                         and after the reboot: NAT66 exactly when tuntap_qemu_nat6)
  after the reboot       after_boot(vm, subnets, nftables_enabled=False)
                         (nftables.service disabled as Debian installs it: our unit alone)
  the admin's case       admin_enables_nftables(vm, subnets)   systemctl enable --now nftables
                         restart_nftables(vm, subnets)         systemctl restart nftables
                         <the stage reboots again>
                         after_boot(vm, subnets, nftables_enabled=True)
                         <a converge reports changed=0>

With tuntap_qemu_nat_backend=iptables (the ifupdown hook instead of the unit):
  after the reboot       after_boot_iptables(vm, subnets)
"""

from __future__ import annotations

import json

UNIT = 'tuntap-qemu-nft.service'
UNIT_FILE = '/etc/systemd/system/' + UNIT
UNIT_LINK = '/etc/systemd/system/sysinit.target.wants/' + UNIT
NFT_FILE = '/etc/nftables.d/tuntap-qemu.nft'
HOOK = '/etc/network/if-up.d/tuntap-qemu'


def _run(vm, *argv):
    """(exit status, stdout stripped) of `sudo argv` on the host (vm.ssh quotes each word
    for the remote shell)."""
    result = vm.ssh('sudo', *argv, check=False, timeout=60)
    return result.returncode, (result.stdout or '').strip()


def _show(vm, unit, *properties):
    _rc, out = _run(vm, 'systemctl', 'show', '-p', ','.join(properties), unit)
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def _tables(vm):
    _rc, out = _run(vm, 'nft', '-j', 'list', 'tables')
    try:
        items = json.loads(out or '{}').get('nftables', [])
    except ValueError:
        return None
    return sorted('%s %s' % (item['table']['family'], item['table']['name'])
                  for item in items if 'table' in item)


def _our_comments(vm):
    rc, out = _run(vm, 'nft', '-j', 'list', 'table', 'inet', 'tuntap_qemu')
    if rc != 0:
        return []
    return sorted(item['rule'].get('comment', '') for item in json.loads(out)['nftables']
                  if 'rule' in item)


def _masquerade_checks(vm, subnets, where):
    comments = _our_comments(vm)
    missing = ['tuntap.qemu masquerade %s oif eth0 | nat' % subnet for subnet in subnets
               if 'tuntap.qemu masquerade %s oif eth0 | nat' % subnet not in comments]
    return [('%s: table inet tuntap_qemu masquerades %s' % (where, ', '.join(subnets)), not missing,
             'missing %s; rules: %s' % (missing, comments) if missing else '%d rules' % len(comments))]


def nat6_checks(vm, networks6, nat6, where):
    """Issue 13: with tuntap_qemu_nat6 the IPv6 guest networks are masqueraded out of eth0
    (NAT66) by our table, each by one rule; without it no IPv6 source is (routed /64s)."""
    return [_nat6_check(_our_comments(vm), networks6, nat6, where)]


def _nat6_check(comments, networks6, nat6, where):
    """One masquerade is several rules of ours, each commented 'tuntap.qemu masquerade NETWORK
    oif IF | PART' (nat: the masquerade itself; forward out/back/bridged: letting it through):
    the IPv6 NETWORKs among them must be networks6 with nat6, none without, and each with its
    nat rule."""
    masqueraded = [comment for comment in comments if comment.startswith('tuntap.qemu masquerade ')]
    ipv6 = sorted(set(comment.split()[2] for comment in masqueraded if ':' in comment.split()[2]))
    wanted = sorted(networks6) if nat6 else []
    missing = ['tuntap.qemu masquerade %s oif eth0 | nat' % network for network in wanted
               if 'tuntap.qemu masquerade %s oif eth0 | nat' % network not in masqueraded]
    title = ('%s: NAT66: table inet tuntap_qemu masquerades %s, no other IPv6 source' % (where, ', '.join(networks6))
             if nat6 else '%s: nat6 off: no IPv6 source is masqueraded' % where)
    ok = ipv6 == wanted and not missing
    return (title, ok, 'IPv6 sources of the masquerade rules %s, missing %s' % (ipv6, missing) if not ok
            else '%d of %d masquerade rules for IPv6 sources' % (
                len([comment for comment in masqueraded if ':' in comment.split()[2]]), len(masqueraded)))


def _unit_checks(vm, where):
    checks = []
    rc, enabled = _run(vm, 'systemctl', 'is-enabled', UNIT)
    checks.append(('%s: %s is enabled' % (where, UNIT), enabled == 'enabled', enabled))
    rc, active = _run(vm, 'systemctl', 'is-active', UNIT)
    props = _show(vm, UNIT, 'Result', 'ExecMainStatus')
    checks.append(('%s: %s is active and succeeded' % (where, UNIT),
                   active == 'active' and props.get('Result') == 'success'
                   and props.get('ExecMainStatus') == '0', '%s %s' % (active, props)))
    return checks


def after_converge(vm, subnets):
    """The converge wrote, enabled and started our unit; nftables.service is untouched."""
    checks = _masquerade_checks(vm, subnets, 'after the converge') + _unit_checks(vm, 'after the converge')
    _rc, head = _run(vm, 'head', '-n', '1', UNIT_FILE)
    checks.append(('unit file carries our mark', head.startswith('# Managed by tuntap.qemu'), head))
    _rc, target = _run(vm, 'readlink', UNIT_LINK)
    checks.append(('enabled through sysinit.target.wants', target == UNIT_FILE, target))
    _rc, start = _run(vm, 'systemctl', 'show', '-p', 'ExecStart', '--value', UNIT)
    checks.append(('unit runs nft -f %s' % NFT_FILE, 'path=/usr/sbin/nft' in start
                   and 'argv[]=/usr/sbin/nft -f %s' % NFT_FILE in start, start))
    # Warnings (an unknown key, a missing program) go to stderr with exit status 0.
    rc, out = _run(vm, 'sh', '-c', 'systemd-analyze verify %s 2>&1' % UNIT_FILE)
    checks.append(('systemd-analyze verify %s: no warnings' % UNIT, rc == 0 and not out, out[-300:]))
    _rc, state = _run(vm, 'systemctl', 'is-enabled', 'nftables.service')
    checks.append(('nftables.service left as installed (disabled)', state == 'disabled', state))
    return checks


def after_boot(vm, subnets, nftables_enabled=False, dhcp=True):
    """After a real reboot: our unit loaded the table before the network came up; with
    nftables.service enabled, ours ran after it and both tables are there; with the guests'
    DHCP server (dhcp), its unit loaded its table inet tuntap_qemu_dhcp too."""
    where = 'after the reboot (nftables.service %s)' % ('enabled' if nftables_enabled else 'disabled')
    checks = _masquerade_checks(vm, subnets, where) + _unit_checks(vm, where)
    expected = ['inet filter', 'inet tuntap_qemu'] if nftables_enabled else ['inet tuntap_qemu']
    if dhcp:
        expected.append('inet tuntap_qemu_dhcp')
    tables = _tables(vm)
    checks.append(('%s: nft tables are %s' % (where, ', '.join(expected)), tables == expected, tables))
    ours = _show(vm, UNIT, 'ActiveEnterTimestampMonotonic')
    networking = _show(vm, 'networking.service', 'InactiveExitTimestampMonotonic')
    ours_at = int(ours.get('ActiveEnterTimestampMonotonic', '0'))
    networking_at = int(networking.get('InactiveExitTimestampMonotonic', '0'))
    checks.append(('%s: table loaded before networking.service started' % where,
                   0 < ours_at <= networking_at, 'ours %d us, networking %d us' % (ours_at, networking_at)))
    state = _show(vm, 'nftables.service', 'ActiveState', 'UnitFileState', 'ActiveEnterTimestampMonotonic')
    if nftables_enabled:
        nft_at = int(state.get('ActiveEnterTimestampMonotonic', '0'))
        checks.append(('%s: nftables.service ran, before our unit' % where,
                       state.get('ActiveState') == 'active' and 0 < nft_at <= ours_at,
                       '%s; ours %d us' % (state, ours_at)))
    else:
        checks.append(('%s: nftables.service did not run' % where,
                       state.get('ActiveState') == 'inactive' and state.get('UnitFileState') == 'disabled',
                       str(state)))
    _rc, forwarding = _run(vm, 'sysctl', '-n', 'net.ipv4.ip_forward')
    checks.append(('%s: net.ipv4.ip_forward = 1' % where, forwarding == '1', forwarding))
    return checks


def admin_enables_nftables(vm, subnets):
    """`systemctl enable --now nftables`: Debian's /etc/nftables.conf flushes the ruleset and
    includes our file (the block the converge added), so our table is back at once."""
    rc, out = _run(vm, 'systemctl', 'enable', '--now', 'nftables.service')
    checks = [('admin: systemctl enable --now nftables', rc == 0, out[-300:])]
    _rc, block = _run(vm, 'grep', '-c', '^include "%s"$' % NFT_FILE, '/etc/nftables.conf')
    checks.append(('/etc/nftables.conf includes our file once', block == '1', block))
    checks += _masquerade_checks(vm, subnets, 'after nftables.service started')
    tables = _tables(vm)
    checks.append(('after nftables.service started: tables inet filter, inet tuntap_qemu',
                   tables == ['inet filter', 'inet tuntap_qemu'], tables))
    return checks


def restart_nftables(vm, subnets):
    """`systemctl restart nftables`: ExecStop flushes the ruleset, ExecStart loads
    /etc/nftables.conf again, whose include brings our table back."""
    rc, out = _run(vm, 'systemctl', 'restart', 'nftables.service')
    checks = [('admin: systemctl restart nftables', rc == 0, out[-300:])]
    checks += _masquerade_checks(vm, subnets, 'after systemctl restart nftables')
    tables = _tables(vm)
    checks.append(('after systemctl restart nftables: tables inet filter, inet tuntap_qemu',
                   tables == ['inet filter', 'inet tuntap_qemu'], tables))
    return checks


def after_boot_iptables(vm, subnets):
    """iptables backend: the ifupdown hook re-added the rules at boot, and no interface
    failed because of it."""
    checks = []
    rc, mode = _run(vm, 'stat', '-c', '%a', HOOK)
    checks.append(('iptables hook %s is executable' % HOOK, mode == '755', mode))
    _rc, rules = _run(vm, 'iptables', '-w', '-t', 'nat', '-S', 'POSTROUTING')
    missing = [subnet for subnet in subnets
               if 'tuntap.qemu masquerade %s oif eth0 | nat' % subnet not in rules]
    checks.append(('after the reboot: iptables nat POSTROUTING masquerades %s' % ', '.join(subnets),
                   not missing, 'missing %s' % missing if missing else ''))
    _rc, failed = _run(vm, 'systemctl', 'is-failed', 'networking.service')
    checks.append(('networking.service did not fail', failed != 'failed', failed))
    _rc, journal = _run(vm, 'journalctl', '-b', '-u', 'networking.service', '--no-pager', '-q',
                        '--grep', 'tuntap-qemu|if-up.d/tuntap-qemu')
    checks.append(('no hook errors in the journal of networking.service', not journal, journal[-300:]))
    return checks
