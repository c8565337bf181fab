#!/usr/bin/env bash
# Runs COMMAND with a /dev/net/tun of its own, mode 0666, so that a QEMU running as an
# unprivileged user can open its tap. The machine's node (0600 on many hosts) is never changed:
# run this in a new private mount namespace, where the mounts below are seen only by COMMAND
# and its children (`ip netns exec` children and the QEMUs they start inherit them):
#
#     unshare --mount --propagation private -- bash private_tun.sh DIR COMMAND [ARGS...]
#
# DIR is an empty folder; a small tmpfs mounted on it holds the new node.
set -eu -o pipefail

if (($# < 2)); then
    echo "usage: unshare --mount --propagation private -- bash private_tun.sh DIR COMMAND [ARGS...]" >&2
    exit 2
fi
dir=$1
shift

# unshare execs this script, so the parent is the caller in the original mount namespace.
if [[ $(readlink /proc/self/ns/mnt) == "$(readlink "/proc/$PPID/ns/mnt")" ]]; then
    echo "private_tun.sh: not in a mount namespace of its own; refusing to touch /dev/net/tun" >&2
    exit 1
fi

major=$((16#$(stat -c %t /dev/net/tun)))
minor=$((16#$(stat -c %T /dev/net/tun)))
mount -t tmpfs -o size=16k,mode=0755 ttq-private-tun "$dir"
mknod -m 0666 "$dir/tun" c "$major" "$minor"
mount --bind "$dir/tun" /dev/net/tun
echo "private_tun.sh: /dev/net/tun here is $(stat -c '%A %t:%T' /dev/net/tun)"
exec "$@"
