#!/bin/sh
# busybox udhcpc's script: prints the lease, and gives the address and route to the interface.
# udhcpc passes the lease in the environment (interface, ip, mask, router, dns, hostname, domain).
# shellcheck disable=SC2154
case $1 in
    deconfig)
        ip -4 addr flush dev "$interface"
        ;;
    bound | renew)
        echo "lease ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname domain=$domain"
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/$mask" dev "$interface"
        ;;
esac
exit 0
