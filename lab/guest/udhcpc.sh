#!/bin/sh
# Event script of the tuntap.qemu test guest's DHCP client (busybox udhcpc -s, in the
# initramfs as /lib/ttq/udhcpc.script; lab/guest/build_guest.py puts it there).
#
# udhcpc runs it with the event as $1 and the lease in the environment: interface, ip,
# mask (prefix length), subnet, router, dns, hostname, domain (busybox networking/udhcp).
# On bound/renew it sets the address, the default route and /etc/resolv.conf, and writes
# the lease to /tmp/ttq-lease, one "key value" line each (ip router dns hostname domain),
# which lab/guest/init.sh reads and reports as TTQ-LEASE.

PATH=/bin
export PATH
# The lease's variables come from udhcpc's environment.
# shellcheck disable=SC2154

case $1 in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        prefix=${mask:-$(ipcalc -p "$ip" "${subnet:-255.255.255.0}" | sed -n 's/^PREFIX=//p')}
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${prefix:-24}" dev "$interface"
        # Word splitting of the router and DNS server lists is intended.
        # shellcheck disable=SC2086
        set -- $router
        gateway=${1:-}
        if [ -n "$gateway" ]; then
            ip route replace default via "$gateway" dev "$interface"
        fi
        {
            if [ -n "${domain:-}" ]; then
                echo "search $domain"
            fi
            for server in ${dns:-}; do
                echo "nameserver $server"
            done
        } >/etc/resolv.conf
        servers=$(echo "${dns:-}" | tr ' ' ',')
        {
            echo "ip $ip/${prefix:-24}"
            echo "router ${gateway:--}"
            echo "dns ${servers:--}"
            echo "hostname ${hostname:--}"
            echo "domain ${domain:--}"
        } >/tmp/ttq-lease
        ;;
esac
exit 0
