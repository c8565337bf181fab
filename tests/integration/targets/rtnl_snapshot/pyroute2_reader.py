# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link snapshot decoded by pyroute2: the reference the collection's own reader
(plugins/module_utils/_links/rtnl_snapshot.py) is proven equal to.

Not part of the collection: compare_snapshots.py (this target) and
benchmarks/snapshot_readers.py import it. read_snapshot_pyroute2(IPRoute()) gives the
{ifname: record} of _links.reading.read_snapshot(), decoded by pyroute2 in full.
"""

from __future__ import annotations

import socket

from ansible_collections.tuntap.qemu.plugins.module_utils._links import tuntap

IFF_UP = 0x1
USER_HZ = 100  # bridge timers are reported in clock_t


def _attr(msg, name, default=None):
    value = msg.get_attr(name)
    return default if value is None else value


def _info_data(linkinfo):
    data = linkinfo.get_attr('IFLA_INFO_DATA') if linkinfo is not None else None
    if data is None or isinstance(data, (str, bytes)):
        return {}
    return dict((key, value) for key, value in data.get('attrs', []))


def link_record(msg):
    """Turn one RTM_NEWLINK message into a plain dict."""
    linkinfo = msg.get_attr('IFLA_LINKINFO')
    kind = linkinfo.get_attr('IFLA_INFO_KIND') if linkinfo is not None else None
    record = {
        'name': msg.get_attr('IFLA_IFNAME'),
        'ifindex': msg['index'],
        'kind': kind,
        'mac': _attr(msg, 'IFLA_ADDRESS'),
        'mtu': _attr(msg, 'IFLA_MTU'),
        'state': 'up' if msg['flags'] & IFF_UP else 'down',
        'operstate': _attr(msg, 'IFLA_OPERSTATE', 'UNKNOWN').lower(),
        'master_index': _attr(msg, 'IFLA_MASTER', 0),
        'master': None,
        'addresses': [],
        'dynamic': {},
        'autoconf': {},
        'alias': msg.get_attr('IFLA_IFALIAS') or None,
    }
    data = _info_data(linkinfo)
    if kind == 'tun':
        owner = data.get('IFLA_TUN_OWNER')
        group = data.get('IFLA_TUN_GROUP')
        record.update({
            'mode': tuntap.TUN_TYPES.get(data.get('IFLA_TUN_TYPE'), 'unknown'),
            'owner': None if owner in (None, tuntap.NO_OWNER) else owner,
            'group': None if group in (None, tuntap.NO_OWNER) else group,
            'multi_queue': bool(data.get('IFLA_TUN_MULTI_QUEUE', 0)),
            'vnet_hdr': bool(data.get('IFLA_TUN_VNET_HDR', 0)),
            'persist': bool(data.get('IFLA_TUN_PERSIST', 0)),
            'carrier': bool(msg.get_attr('IFLA_CARRIER')),
        })
    elif kind == 'bridge':
        record.update({
            'stp': bool(data.get('IFLA_BR_STP_STATE', 0)),
            'forward_delay': data.get('IFLA_BR_FORWARD_DELAY', 0) // USER_HZ,
        })
    if linkinfo is not None and linkinfo.get_attr('IFLA_INFO_SLAVE_KIND') == 'bridge':
        port = linkinfo.get_attr('IFLA_INFO_SLAVE_DATA')
        record['isolated'] = bool(port.get_attr('IFLA_BRPORT_ISOLATED')) if port is not None else False
    return record


def _is_link_local_v6(address):
    return address.lower().startswith('fe80:')


def _autoconf_kind(msg):
    """'slaac' / 'temporary' / None, from pyroute2's decoding of IFA_FLAGS and IFA_PROTO
    (linux/if_addr.h: IFA_F_TEMPORARY 0x01, IFA_F_PERMANENT 0x80, IFA_F_MANAGETEMPADDR 0x100,
    IFAPROT_KERNEL_RA 2)."""
    if msg['family'] != socket.AF_INET6:
        return None
    flags = msg.get_attr('IFA_FLAGS')
    if flags is None:
        flags = msg['flags']
    proto = msg.get_attr('IFA_PROTO')
    if flags & 0x80 or proto not in (None, 0, 2):
        return None
    if flags & 0x01:
        return 'temporary'
    if flags & 0x100 or proto == 2:
        return 'slaac'
    return None


def read_snapshot_pyroute2(ipr):
    """The snapshot decoded by pyroute2 (`ipr` an IPRoute): the reference."""
    by_index = {}
    for msg in ipr.get_links():
        record = link_record(msg)
        by_index[record['ifindex']] = record
    for msg in ipr.get_addr():
        record = by_index.get(msg['index'])
        if record is None:
            continue
        address = msg.get_attr('IFA_LOCAL') or msg.get_attr('IFA_ADDRESS')
        if address is None or _is_link_local_v6(address):
            continue
        kind = _autoconf_kind(msg)
        if kind:
            record['autoconf']['%s/%d' % (address, msg['prefixlen'])] = kind
            continue
        record['addresses'].append('%s/%d' % (address, msg['prefixlen']))
        cache = msg.get_attr('IFA_CACHEINFO')
        if cache is not None and cache['ifa_valid'] != 0xFFFFFFFF:
            record['dynamic']['%s/%d' % (address, msg['prefixlen'])] = {
                'valid': cache['ifa_valid'], 'preferred': cache['ifa_preferred']}
    snapshot = {}
    for record in by_index.values():
        master = by_index.get(record['master_index'])
        record['master'] = master['name'] if master else None
        record['addresses'].sort()
        snapshot[record['name']] = record
    return snapshot
