#!/bin/sh
# /init of the tuntap.qemu test guest (busybox sh, PID 1 of an initramfs).
#
# Kernel command line (read from /proc/cmdline; dotted words never reach init's argv):
#   ip=CLIENT::GATEWAY:NETMASK:HOSTNAME:DEVICE:off
#                        the kernel's static form (Documentation/admin-guide/nfs/nfsroot.rst),
#                        as the tuntap.qemu.guest_kernel_ip filter renders it; it sets the
#                        address, gateway and name (ttq.* words given as well take precedence)
#   ttq.name=NAME        the guest's name in every line it prints (default: the DHCP
#                        hostname, else guest)
#   ttq.ip=ADDR/PREFIX   address of the NIC (IPv4 or IPv6)
#   ttq.gw=GATEWAY       default route (optional)
#   ttq.ip6=ADDR/PREFIX  a static IPv6 address of the NIC besides the IPv4 one (SLAAC off:
#                        the NIC keeps only this global IPv6 address)
#   ttq.gw6=GATEWAY      IPv6 default route (optional; a router advertisement may add one)
#   ttq.ip6_wait=SECONDS without ttq.ip6: how long to wait, after DHCP, for a global IPv6
#                        address that SLAAC makes from a router advertisement (default 10
#                        when a ttq.ping target is an IPv6 address, else 0: IPv4-only guests
#                        do not wait); TTQ-BOOT reports the address (ip6=) and the wait
#                        (ip6_wait=, seconds; - for a static address)
#                        Duplicate address detection is off on the NIC (the fleet plan makes
#                        the addresses unique; it would delay every IPv6 address by a second).
#                        Without an address (neither ip= nor ttq.ip=) the guest asks DHCP:
#                        busybox udhcpc with /lib/ttq/udhcpc.script (lab/guest/udhcpc.sh)
#                        sets the leased address/prefix, default route and /etc/resolv.conf.
#   ttq.ping=A,B,C       targets to ping, in order (optional); a target that is a name is
#                        looked up first as ttq.lookup does (busybox's static ping cannot
#                        resolve names: no NSS modules in the initramfs); an IPv6 address
#                        is pinged over IPv6 (busybox ping -6)
#   ttq.lookup=N,M       names to look up (busybox nslookup, A records, against the leased
#                        DNS server, else /etc/resolv.conf's)
#   ttq.listen=PORT      a TCP listener (busybox httpd) answering GET / with the body
#                        "TTQ-HTTP name=NAME", started before the lookups and pings
#   ttq.fetch=URL,URL    URLs to GET (busybox wget) after the pings, each tried for up to
#                        2 x ttq.tries rounds (a sibling's listener may come up later)
#   ttq.unreach=A,B      targets that must NOT answer (isolation): after the pings and
#                        fetches, each is pinged once, briefly (ping -c 2 -i 0.2 -W 1 -w 2,
#                        no retry rounds: a must-fail target costs two seconds), an IPv6
#                        address over IPv6, a name looked up first as for ttq.ping; reported
#                        as TTQ-UNREACH status=blocked (no answer, counted ok), reached (an
#                        answer, counted as a failure) or unresolved (a name without an
#                        address, counted as a failure)
#   ttq.unreach_after=S  before those pings, wait until the guest's uptime is S seconds
#                        (default 0), so that the guests among the targets are up by then
#                        (TTQ-BOOT's and TTQ-UNREACH's clock= let the reader check that)
#   ttq.mac=MAC          use the NIC with this MAC; without it, eth0 (the first virtio NIC)
#   ttq.tries=N          rounds of `ping -c 3` per target before it counts as failed (default
#                        5, about 4 s each when nothing answers; covers a slow host side);
#                        also the rounds of each lookup
#   ttq.dhcp_tries=N     DHCP discovers, one a second, before reason=no-lease (default 20)
#   ttq.after=poweroff   what to do after the checks: poweroff (default) or stay, which keeps
#                        the guest running until QEMU's system_powerdown (ACPI power button)
#
# Serial console lines, one per event, each starting with a fixed tag (key=value fields):
#   TTQ-LEASE name=vm3 ip=192.168.3.10/24 router=192.168.3.1 dns=192.168.3.1 hostname=vm3 domain=qemu.internal
#   TTQ-BOOT name=vm1 nic=eth0 mac=52:54:00:.. ip=192.168.0.10/24 uptime=1.23 ip6=fd00:1::5054:ff:fe12:3456/64 ip6_wait=1.40 clock=1796176755
#                        (ip6: the static ttq.ip6, else the first global IPv6 address the
#                        NIC has after ip6_wait seconds at most, or -; ip6_wait: the seconds
#                        waited for it, - with ttq.ip6; clock: the guest's time in seconds
#                        since the epoch, from the RTC QEMU gives it, i.e. the host's clock
#                        when QEMU started, in whole seconds: comparable across guests)
#   TTQ-LISTEN name=vm4 port=80 status=ok
#   TTQ-LOOKUP name=vm3 query=vm4.qemu.internal address=192.168.4.10 status=ok tries=1
#   TTQ-RESULT name=vm1 target=192.168.0.1 status=ok rtt_ms=0.52 tries=1
#                        (a named target adds address=A, the looked-up address or -)
#   TTQ-UNREACH name=vm10 target=192.168.9.12 status=blocked rtt_ms=- clock=1796176770
#                        (clock: when the ping started, as TTQ-BOOT's; a named target adds
#                        address=A as TTQ-RESULT does)
#   TTQ-FETCH name=vm3 url=http://10.0.0.12:8004/ status=ok tries=1 body=TTQ-HTTP%20name=vm4
#                        (the body's first line, at most 200 characters, % and spaces
#                        %-encoded so that it stays one field)
#   TTQ-ERROR name=vm1 reason=...       (reason=no-lease: no DHCP answer)
#   TTQ-DONE name=vm1 ok=1 fail=0 uptime=2.34
#                        (ok and fail count the pings, lookups, fetches and must-fail
#                        pings: blocked is ok)
# A field without a value is "-". The parser in lab/guest/guest_boot.py reads them.

PATH=/bin
export PATH
# busybox --install links the applets to what /proc/self/exe names: /proc comes first.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

name=guest
address=
gateway=
address6=
gateway6=
ip6_wait=
targets=
unreach=
unreach_after=0
lookups=
listen=
fetches=
mac=
after=poweroff
max_tries=5
dhcp_tries=20
# Word splitting of the command line is intended here.
# shellcheck disable=SC2013
for word in $(cat /proc/cmdline); do
    case $word in
        ip=*:*)
            # client-ip:server-ip:gw-ip:netmask:hostname:device:autoconf
            fields=${word#ip=}
            kernel_ip=${fields%%:*}
            fields=${fields#*:}; fields=${fields#*:}
            kernel_gw=${fields%%:*}
            fields=${fields#*:}
            kernel_mask=${fields%%:*}
            fields=${fields#*:}
            kernel_host=${fields%%:*}
            ;;
        ttq.name=*) name=${word#ttq.name=} ;;
        ttq.ip=*) address=${word#ttq.ip=} ;;
        ttq.gw=*) gateway=${word#ttq.gw=} ;;
        ttq.ip6=*) address6=${word#ttq.ip6=} ;;
        ttq.gw6=*) gateway6=${word#ttq.gw6=} ;;
        ttq.ip6_wait=*) ip6_wait=${word#ttq.ip6_wait=} ;;
        ttq.ping=*) targets=${word#ttq.ping=} ;;
        ttq.unreach=*) unreach=${word#ttq.unreach=} ;;
        ttq.unreach_after=*) unreach_after=${word#ttq.unreach_after=} ;;
        ttq.lookup=*) lookups=${word#ttq.lookup=} ;;
        ttq.listen=*) listen=${word#ttq.listen=} ;;
        ttq.fetch=*) fetches=${word#ttq.fetch=} ;;
        ttq.dhcp_tries=*) dhcp_tries=${word#ttq.dhcp_tries=} ;;
        ttq.mac=*) mac=$(echo "${word#ttq.mac=}" | tr 'A-F' 'a-f') ;;
        ttq.after=*) after=${word#ttq.after=} ;;
        ttq.tries=*) max_tries=${word#ttq.tries=} ;;
    esac
done

# The kernel ip= form fills in what the ttq.* words did not say.
if [ -n "${kernel_ip:-}" ] && [ -z "$address" ]; then
    prefix=$(ipcalc -p "$kernel_ip" "${kernel_mask:-255.255.255.0}" | sed -n 's/^PREFIX=//p')
    address=$kernel_ip/${prefix:-24}
fi
if [ -n "${kernel_gw:-}" ] && [ -z "$gateway" ]; then
    gateway=$kernel_gw
fi
if [ -n "${kernel_host:-}" ] && [ "$name" = guest ]; then
    name=$kernel_host
fi
if [ -z "$ip6_wait" ]; then
    ip6_wait=0
    case $targets,$unreach in
        *:*) ip6_wait=10 ;;
    esac
fi

uptime_seconds() {
    cut -d ' ' -f 1 /proc/uptime
}

finish() {
    echo "TTQ-DONE name=$name ok=$1 fail=$2 uptime=$(uptime_seconds)"
    if [ "$after" = stay ]; then
        wait_for_power_button
    fi
    poweroff -f
    # Not reached; PID 1 must never exit.
    while :; do sleep 3600; done
}

# Blocks until the ACPI power button (QEMU's system_powerdown) sends an input event.
wait_for_power_button() {
    for event in /sys/class/input/event*; do
        if [ "$(cat "$event/device/name" 2>/dev/null)" = "Power Button" ]; then
            head -c 1 "/dev/input/${event##*/}" >/dev/null
            return
        fi
    done
    # No power button: stay until QEMU is stopped from outside.
    while :; do sleep 3600; done
}

# Modules in dependency order, one file name per line (written by build_guest.py).
while read -r module; do
    insmod "/lib/modules/$module" || echo "TTQ-ERROR name=$name reason=insmod-$module"
done </lib/modules/load-order

nic=
tries=0
while [ -z "$nic" ] && [ $tries -lt 50 ]; do
    for path in /sys/class/net/*; do
        candidate=${path##*/}
        [ "$candidate" = lo ] && continue
        if [ -n "$mac" ]; then
            [ "$(cat "$path/address")" = "$mac" ] && nic=$candidate
        elif [ "$candidate" = eth0 ]; then
            nic=eth0
        fi
    done
    [ -z "$nic" ] && sleep 0.1
    tries=$((tries + 1))
done

ip link set lo up
if [ -z "$nic" ]; then
    echo "TTQ-ERROR name=$name reason=no-nic${mac:+-with-mac-$mac}"
    finish 0 "$(echo "$targets,$lookups,$fetches,$unreach" | tr ',' ' ' | wc -w)"
fi

# Before the link is up: no duplicate address detection (each address is usable at once);
# with a static IPv6 address, no SLAAC address beside it.
if [ -d "/proc/sys/net/ipv6/conf/$nic" ]; then
    echo 0 >"/proc/sys/net/ipv6/conf/$nic/accept_dad"
    [ -n "$address6" ] && echo 0 >"/proc/sys/net/ipv6/conf/$nic/autoconf"
fi
ip link set "$nic" up
if [ -n "$address" ] && ! ip addr add "$address" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-address-$address"
fi
if [ -n "$address6" ] && ! ip -6 addr add "$address6" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-address6-$address6"
fi
tries=0
while [ "$(cat "/sys/class/net/$nic/carrier" 2>/dev/null)" != 1 ] && [ $tries -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
if [ -n "$gateway" ] && ! ip route add default via "$gateway" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-gateway-$gateway"
fi
# replace: a router advertisement may have brought a default route already.
if [ -n "$gateway6" ] && ! ip -6 route replace default via "$gateway6" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-gateway6-$gateway6"
fi

# DHCP mode: no address on the command line. udhcpc's script writes /tmp/ttq-lease.
lease_dns=
if [ -z "$address" ]; then
    rm -f /tmp/ttq-lease
    # -f foreground, -q exit once bound, -n exit without a lease after -t discovers.
    udhcpc -f -q -n -t "$dhcp_tries" -T 1 -A 1 -i "$nic" -s /lib/ttq/udhcpc.script \
        >/tmp/udhcpc.log 2>&1
    if [ -s /tmp/ttq-lease ]; then
        lease_ip=- lease_router=- lease_hostname=- lease_domain=-
        while read -r key value; do
            case $key in
                ip) lease_ip=$value ;;
                router) lease_router=$value ;;
                dns) lease_dns=$value ;;
                hostname) lease_hostname=$value ;;
                domain) lease_domain=$value ;;
            esac
        done </tmp/ttq-lease
        address=$lease_ip
        if [ "$name" = guest ] && [ "$lease_hostname" != - ]; then
            name=$lease_hostname
        fi
        echo "TTQ-LEASE name=$name ip=$lease_ip router=$lease_router dns=${lease_dns:--} hostname=$lease_hostname domain=$lease_domain"
        [ "$lease_dns" = - ] && lease_dns=
    else
        echo "TTQ-ERROR name=$name reason=no-lease"
    fi
fi

# The first global IPv6 address of the NIC that is not tentative, or nothing.
global_ipv6() {
    ip -6 addr show dev "$nic" scope global 2>/dev/null |
        awk '$1 == "inet6" && !/tentative/ { print $2; exit }'
}

# SLAAC: the address the kernel makes from a router advertisement, waited for (bounded).
if [ -n "$address6" ]; then
    ip6=$address6
    waited=-
else
    wait_started=$(uptime_seconds)
    deadline=$(awk -v now="$wait_started" -v wait="$ip6_wait" 'BEGIN { print now + wait }')
    ip6=$(global_ipv6)
    while [ -z "$ip6" ] && awk -v now="$(uptime_seconds)" -v end="$deadline" 'BEGIN { exit !(now < end) }'; do
        sleep 0.2
        ip6=$(global_ipv6)
    done
    waited=$(awk -v start="$wait_started" -v now="$(uptime_seconds)" 'BEGIN { printf "%.2f", now - start }')
fi
echo "TTQ-BOOT name=$name nic=$nic mac=$(cat "/sys/class/net/$nic/address") ip=${address:-none} uptime=$(uptime_seconds) ip6=${ip6:--} ip6_wait=$waited clock=$(date +%s)"

ok=0
fail=0
count() {
    if [ "$1" = ok ]; then
        ok=$((ok + 1))
    else
        fail=$((fail + 1))
    fi
}

if [ -n "$listen" ]; then
    mkdir -p /www
    echo "TTQ-HTTP name=$name" >/www/index.html
    # httpd forks into the background once it listens.
    if httpd -p "$listen" -h /www; then
        echo "TTQ-LISTEN name=$name port=$listen status=ok"
    else
        echo "TTQ-LISTEN name=$name port=$listen status=fail"
    fi
fi

# The first IPv4 address busybox nslookup gives for $1 (A records; from the leased DNS
# server, else from /etc/resolv.conf's), tried for up to max_tries rounds; sets
# looked_up (address or empty) and lookup_tries.
lookup() {
    looked_up=
    lookup_tries=1
    while [ $lookup_tries -le "$max_tries" ]; do
        # The answer follows the server's own lines: the first Address after a Name line.
        looked_up=$(nslookup -type=a "$1" ${lease_dns:+"${lease_dns%%,*}"} 2>/dev/null |
            awk '/^Name:/ { found = 1; next }
                 found && /^Address/ { sub(/^Address[^:]*:[ \t]*/, ""); print; exit }')
        [ -n "$looked_up" ] && return 0
        lookup_tries=$((lookup_tries + 1))
        [ $lookup_tries -le "$max_tries" ] && sleep 1
    done
    lookup_tries=$max_tries
    return 1
}

for query in $(echo "$lookups" | tr ',' ' '); do
    if lookup "$query"; then
        status=ok
    else
        status=fail
    fi
    count $status
    echo "TTQ-LOOKUP name=$name query=$query address=${looked_up:--} status=$status tries=$lookup_tries"
done

for target in $(echo "$targets" | tr ',' ' '); do
    status=fail
    rtt=-
    try=1
    destination=$target
    named=
    family=-4
    case $target in
        *:*) family=-6 ;;
        *[!0-9.]*)
            # A name: busybox's static ping cannot resolve it, nslookup can.
            named=1
            lookup "$target"
            destination=$looked_up
            ;;
    esac
    while [ -n "$destination" ] && [ $try -le "$max_tries" ]; do
        output=$(ping "$family" -c 3 -i 0.2 -W 2 -w 6 "$destination" 2>&1)
        # round-trip min/avg/max = 0.291/0.520/0.810 ms
        rtt=$(echo "$output" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
        if [ -n "$rtt" ]; then
            status=ok
            break
        fi
        rtt=-
        try=$((try + 1))
        [ $try -le "$max_tries" ] && sleep 1
    done
    count $status
    [ $status = ok ] || try=$((try - 1))
    echo "TTQ-RESULT name=$name target=$target status=$status rtt_ms=$rtt tries=$try${named:+ address=${destination:--}}"
done

fetch_rounds=$((2 * max_tries))
for url in $(echo "$fetches" | tr ',' ' '); do
    status=fail
    body=
    try=1
    while [ $try -le $fetch_rounds ]; do
        # busybox 1.35 wget -T crashes (SIGSEGV): timeout bounds a connect nobody answers.
        if body=$(timeout 5 wget -q -O - "$url" 2>/dev/null); then
            status=ok
            break
        fi
        try=$((try + 1))
        [ $try -le $fetch_rounds ] && sleep 1
    done
    count $status
    [ $status = ok ] || try=$((try - 1))
    body=$(printf '%s\n' "$body" | head -n 1 | cut -c 1-200 | sed 's/%/%25/g; s/[[:space:]]/%20/g')
    echo "TTQ-FETCH name=$name url=$url status=$status tries=$try body=$body"
done

# The must-fail pings, last: one short try each (no retry rounds), once the guest has been
# up for ttq.unreach_after seconds.
if [ -n "$unreach" ]; then
    while awk -v now="$(uptime_seconds)" -v end="$unreach_after" 'BEGIN { exit !(now < end) }'; do
        sleep 0.2
    done
fi
for target in $(echo "$unreach" | tr ',' ' '); do
    destination=$target
    named=
    family=-4
    case $target in
        *:*) family=-6 ;;
        *[!0-9.]*)
            named=1
            lookup "$target"
            destination=$looked_up
            ;;
    esac
    clock=$(date +%s)
    rtt=-
    if [ -z "$destination" ]; then
        status=unresolved
    else
        output=$(ping "$family" -c 2 -i 0.2 -W 1 -w 2 "$destination" 2>&1)
        rtt=$(echo "$output" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
        if [ -n "$rtt" ]; then
            status=reached
        else
            status=blocked
            rtt=-
        fi
    fi
    if [ $status = blocked ]; then
        count ok
    else
        count fail
    fi
    echo "TTQ-UNREACH name=$name target=$target status=$status rtt_ms=$rtt clock=$clock${named:+ address=${destination:--}}"
done
finish $ok $fail
