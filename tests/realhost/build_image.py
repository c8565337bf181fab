# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the Debian 12 host image of the real-host test stage, cached.

    python3 tests/realhost/build_image.py [--cache-root DIR] [--uplink static|dhcp] [--json]

A stock Debian 12 (bookworm) host as the installer would leave it, made with
`debootstrap --variant=minbase` from the Debian mirror and `apt-get install
--no-install-recommends` of PACKAGES in a chroot. Nothing is loop-mounted: the root file
system is written by `mkfs.ext4 -d ROOTDIR root.img 4G` (sparse). The kernel and initrd
are copied out of the root's /boot for QEMU's direct kernel boot.

The cache folder is <cache-root>/<recipe hash>-<uplink>/: root.img, vmlinuz, initrd.img,
id_ed25519(.pub) (the controller's key, in ttq's authorized_keys) and image.json. The
recipe hash covers this file and the package list, so any change rebuilds. A build goes
to a temporary folder beside the cache and is renamed into place only when complete.

The uplink variant decides the eth0 stanza of /etc/network/interfaces, exactly as the
Debian installer writes it: `static` (10.44.0.50/24, gateway 10.44.0.1) or `dhcp`; each
variant is its own cached image (the same recipe, one more build).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_CACHE_ROOT = '/var/cache/tuntap-qemu/realhost'
MIRROR = 'http://deb.debian.org/debian'
SUITE = 'bookworm'
IMAGE_SIZE = '4G'
HOSTNAME = 'ttqhost'
USER = 'ttq'
# What a Debian 12 hypervisor of the collection has, no recommends. nftables and iptables
# stay as Debian installs them: nftables.service installed and disabled.
PACKAGES = (
    'systemd', 'systemd-sysv', 'udev', 'dbus', 'ifupdown', 'isc-dhcp-client', 'iproute2',
    'openssh-server', 'openssh-sftp-server', 'sudo',
    'python3', 'python3-pyroute2', 'python3-netaddr', 'python3-nftables', 'python3-apt',
    'nftables', 'iptables', 'bridge-utils', 'qemu-system-x86',
    'iputils-ping', 'procps', 'kmod', 'initramfs-tools', 'linux-image-amd64',
    # The guests' DHCP and DNS server of issue 12 (tuntap.qemu.guest_dhcp; the VM has no
    # mirror, so the role runs with tuntap_qemu_install_packages false and finds it here).
    'dnsmasq-base',
    # Issue 13's VDE switch (tuntap.qemu.vde_switch runs its vde_switch; Debian's QEMU has
    # -netdev vde through libvdeplug, which qemu-system-x86 already depends on).
    'vde2',
)
# Modules the root device and the NIC need before / is mounted (MODULES=most takes the
# block ones already; listed so that the check below can say what is missing).
INITRAMFS_MODULES = ('virtio_pci', 'virtio_blk', 'virtio_net', 'ext4')
UPLINKS = {
    'static': ('allow-hotplug eth0\n'
               'iface eth0 inet static\n'
               '\taddress 10.44.0.50/24\n'
               '\tgateway 10.44.0.1\n'),
    'dhcp': ('allow-hotplug eth0\n'
             'iface eth0 inet dhcp\n'),
}
INTERFACES_HEAD = ('# This file describes the network interfaces available on your system\n'
                   '# and how to activate them. For more information, see interfaces(5).\n'
                   '\n'
                   'source /etc/network/interfaces.d/*\n'
                   '\n'
                   '# The loopback network interface\n'
                   'auto lo\n'
                   'iface lo inet loopback\n'
                   '\n'
                   '# The primary network interface\n')
ENV = dict(os.environ, LC_ALL='C', DEBIAN_FRONTEND='noninteractive',
           PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')


class ImageBuildError(Exception):
    pass


def log(message):
    print('[build_image] %s' % message, flush=True)


def run(argv, **kwargs):
    result = subprocess.run(argv, env=ENV, text=True, check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode != 0:
        tail = '\n'.join(result.stdout.splitlines()[-30:])
        raise ImageBuildError('%s failed (exit %d):\n%s' % (' '.join(argv), result.returncode, tail))
    return result.stdout


def recipe_hash():
    digest = hashlib.sha256()
    with open(os.path.abspath(__file__), 'rb') as handle:
        digest.update(handle.read())
    digest.update('\n'.join(PACKAGES).encode())
    return digest.hexdigest()[:16]


def image_dir(cache_root=DEFAULT_CACHE_ROOT, uplink='static'):
    return os.path.join(cache_root, '%s-%s' % (recipe_hash(), uplink))


@contextlib.contextmanager
def chroot_mounts(root):
    """/proc, /sys and /dev for the package scripts in the chroot (bind/virtual, no loop)."""
    mounted = []
    try:
        for source, target, argv in (
                ('proc', 'proc', ['mount', '-t', 'proc', 'proc']),
                ('sysfs', 'sys', ['mount', '-t', 'sysfs', 'sysfs']),
                ('/dev', 'dev', ['mount', '--bind', '/dev']),
                ('/dev/pts', 'dev/pts', ['mount', '--bind', '/dev/pts'])):
            path = os.path.join(root, target)
            os.makedirs(path, exist_ok=True)
            run(argv + [path])
            mounted.append(path)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(['umount', '-l', path], check=False)


def write(root, path, text, mode=0o644):
    full = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as handle:
        handle.write(text)
    os.chmod(full, mode)


def chroot(root, *argv):
    return run(['chroot', root] + list(argv))


def install_packages(root):
    # No daemon starts in the chroot.
    write(root, '/usr/sbin/policy-rc.d', '#!/bin/sh\nexit 101\n', 0o755)
    with chroot_mounts(root):
        chroot(root, 'apt-get', 'update', '-q')
        chroot(root, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', *PACKAGES)
        chroot(root, 'apt-get', 'clean')
    os.remove(os.path.join(root, 'usr/sbin/policy-rc.d'))


def check_initramfs(root):
    initrds = glob.glob(os.path.join(root, 'boot/initrd.img-*'))
    if len(initrds) != 1:
        raise ImageBuildError('expected one initrd in /boot, found %r' % initrds)
    listing = run(['chroot', root, 'lsinitramfs', '/boot/' + os.path.basename(initrds[0])])
    kernels = glob.glob(os.path.join(root, 'boot/vmlinuz-*'))
    release = os.path.basename(kernels[0])[len('vmlinuz-'):]
    builtin_path = os.path.join(root, 'lib/modules', release, 'modules.builtin')
    with open(builtin_path) as handle:
        builtin = handle.read()
    missing = [name for name in INITRAMFS_MODULES
               if '/%s.ko' % name not in listing and '/%s.ko' % name not in builtin]
    if missing:
        with open(os.path.join(root, 'etc/initramfs-tools/modules'), 'a') as handle:
            handle.write(''.join('%s\n' % name for name in missing))
        with chroot_mounts(root):
            chroot(root, 'update-initramfs', '-u', '-k', release)
        log('initramfs rebuilt with %s' % ', '.join(missing))
    return kernels[0], initrds[0]


def configure(root, uplink, public_key):
    write(root, '/etc/hostname', HOSTNAME + '\n')
    write(root, '/etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n'
          '::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\n'
          'ff02::2\tip6-allrouters\n' % HOSTNAME)
    write(root, '/etc/fstab', '/dev/vda / ext4 errors=remount-ro 0 1\n')
    write(root, '/etc/network/interfaces', INTERFACES_HEAD + UPLINKS[uplink])
    os.makedirs(os.path.join(root, 'etc/network/interfaces.d'), exist_ok=True)
    # The VM has no route to a mirror: no sources (apt then has nothing to update from).
    for path in ('etc/apt/sources.list',):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(root, path))
    for path in glob.glob(os.path.join(root, 'var/lib/apt/lists/*_*')):
        os.remove(path)
    chroot(root, 'useradd', '--create-home', '--shell', '/bin/bash', USER)
    chroot(root, 'usermod', '--lock', 'root')
    write(root, '/etc/sudoers.d/ttq', '%s ALL=(ALL) NOPASSWD:ALL\n' % USER, 0o440)
    ssh_dir = os.path.join(root, 'home', USER, '.ssh')
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    write(root, '/home/%s/.ssh/authorized_keys' % USER, public_key, 0o600)
    chroot(root, 'chown', '-R', '%s:%s' % (USER, USER), '/home/%s/.ssh' % USER)
    os.chmod(ssh_dir, 0o700)
    # A serial login on ttyS0 (the kernel's console=ttyS0 would also make the generator add it).
    wants = os.path.join(root, 'etc/systemd/system/getty.target.wants')
    os.makedirs(wants, exist_ok=True)
    link = os.path.join(wants, 'serial-getty@ttyS0.service')
    if not os.path.lexists(link):
        os.symlink('/lib/systemd/system/serial-getty@.service', link)
    # The same host keys on every boot of this image (generated by openssh-server's postinst).
    if not glob.glob(os.path.join(root, 'etc/ssh/ssh_host_ed25519_key')):
        chroot(root, 'ssh-keygen', '-A')


def check_defaults(root):
    """What the stage relies on being Debian's default state."""
    state = subprocess.run(
        ['chroot', root, 'systemctl', 'is-enabled', 'nftables.service'],
        env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    ).stdout.strip()
    if state != 'disabled':
        raise ImageBuildError('nftables.service is %r in the image, Debian installs it disabled' % state)
    return {'nftables.service': state}


def build(cache_root=DEFAULT_CACHE_ROOT, uplink='static'):
    """Return the image folder, building it when the cache has none for this recipe."""
    if uplink not in UPLINKS:
        raise ImageBuildError('uplink must be one of %s' % ', '.join(sorted(UPLINKS)))
    final = image_dir(cache_root, uplink)
    if os.path.isfile(os.path.join(final, 'image.json')):
        return final, None
    os.makedirs(cache_root, exist_ok=True)
    with open(os.path.join(cache_root, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(os.path.join(final, 'image.json')):
            return final, None
        start = time.monotonic()
        temp = tempfile.mkdtemp(prefix='.build-%s-' % os.path.basename(final), dir=cache_root)
        try:
            root = os.path.join(temp, 'rootfs')
            run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'tuntap-qemu-realhost',
                 '-f', os.path.join(temp, 'id_ed25519')])
            with open(os.path.join(temp, 'id_ed25519.pub')) as handle:
                public_key = handle.read()
            log('debootstrap --variant=minbase %s from %s' % (SUITE, MIRROR))
            run(['debootstrap', '--variant=minbase', SUITE, root, MIRROR])
            log('installing %d packages (no recommends)' % len(PACKAGES))
            install_packages(root)
            kernel, initrd = check_initramfs(root)
            configure(root, uplink, public_key)
            defaults = check_defaults(root)
            shutil.copy(kernel, os.path.join(temp, 'vmlinuz'))
            shutil.copy(initrd, os.path.join(temp, 'initrd.img'))
            log('mkfs.ext4 -d rootfs root.img %s' % IMAGE_SIZE)
            run(['mkfs.ext4', '-q', '-F', '-L', 'ttqroot', '-d', root,
                 os.path.join(temp, 'root.img'), IMAGE_SIZE])
            shutil.rmtree(root)
            info = {
                'recipe': recipe_hash(), 'uplink': uplink, 'suite': SUITE,
                'kernel': os.path.basename(kernel), 'packages': list(PACKAGES),
                'defaults': defaults, 'build_seconds': round(time.monotonic() - start, 1),
            }
            with open(os.path.join(temp, 'image.json'), 'w') as handle:
                json.dump(info, handle, indent=1)
            os.rename(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return final, info['build_seconds']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cache-root', default=DEFAULT_CACHE_ROOT)
    parser.add_argument('--uplink', default='static', choices=sorted(UPLINKS))
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        path, seconds = build(args.cache_root, args.uplink)
    except ImageBuildError as error:
        print('image build failed: %s' % error, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({'image': path, 'built_seconds': seconds}))
    elif seconds is None:
        print('image: %s (cached, %.1fs)' % (path, time.monotonic() - start))
    else:
        print('image: %s (built in %.0fs)' % (path, seconds))
    return 0


if __name__ == '__main__':
    sys.exit(main())
