#!/bin/sh
# /init of the tuntap.qemu test guest (busybox sh, PID 1 of an initramfs).
#
# Kernel command line (read from /proc/cmdline; dotted words never reach init's argv):
#   ip=CLIENT::GATEWAY:NETMASK:HOSTNAME:DEVICE:off
#                        the kernel's static form (Documentation/admin-guide/nfs/nfsroot.rst),
#                        as the tuntap.qemu.guest_kernel_ip filter renders it; it sets the
#                        address, gateway and name (ttq.* words given as well take precedence)
#   ttq.name=NAME        the guest's name in every line it prints (default: guest)
#   ttq.ip=ADDR/PREFIX   address of the NIC (IPv4 or IPv6)
#   ttq.gw=GATEWAY       default route (optional)
#   ttq.ping=A,B,C       targets to ping, in order (optional)
#   ttq.mac=MAC          use the NIC with this MAC; without it, eth0 (the first virtio NIC)
#   ttq.tries=N          rounds of `ping -c 3` per target before it counts as failed (default
#                        5, about 4 s each when nothing answers; covers a slow host side)
#   ttq.after=poweroff   what to do after the pings: poweroff (default) or stay, which keeps
#                        the guest running until QEMU's system_powerdown (ACPI power button)
#
# Serial console lines, one per event, each starting with a fixed tag (key=value fields):
#   TTQ-BOOT name=vm1 nic=eth0 mac=52:54:00:.. ip=192.168.0.10/24 uptime=1.23
#   TTQ-RESULT name=vm1 target=192.168.0.1 status=ok rtt_ms=0.52 tries=1
#   TTQ-ERROR name=vm1 reason=...
#   TTQ-DONE name=vm1 ok=1 fail=0 uptime=2.34
# The parser in lab/guest/guest_boot.py reads them.

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
targets=
mac=
after=poweroff
max_tries=5
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
        ttq.ping=*) targets=${word#ttq.ping=} ;;
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
    finish 0 "$(echo "$targets" | tr ',' ' ' | wc -w)"
fi

ip link set "$nic" up
if [ -n "$address" ] && ! ip addr add "$address" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-address-$address"
fi
tries=0
while [ "$(cat "/sys/class/net/$nic/carrier" 2>/dev/null)" != 1 ] && [ $tries -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
if [ -n "$gateway" ] && ! ip route add default via "$gateway" dev "$nic"; then
    echo "TTQ-ERROR name=$name reason=bad-gateway-$gateway"
fi
echo "TTQ-BOOT name=$name nic=$nic mac=$(cat "/sys/class/net/$nic/address") ip=${address:-none} uptime=$(uptime_seconds)"

ok=0
fail=0
for target in $(echo "$targets" | tr ',' ' '); do
    status=fail
    rtt=-
    try=1
    while [ $try -le "$max_tries" ]; do
        output=$(ping -c 3 -i 0.2 -W 2 -w 6 "$target" 2>&1)
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
    if [ $status = ok ]; then
        ok=$((ok + 1))
    else
        fail=$((fail + 1))
        try=$((try - 1))
    fi
    echo "TTQ-RESULT name=$name target=$target status=$status rtt_ms=$rtt tries=$try"
done
finish $ok $fail
