# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the tuntap.qemu test guest from Debian packages: a kernel and a busybox initramfs.

    python3 lab/guest/build_guest.py [--cache-dir DIR] [--json]

The kernel comes from linux-image-cloud-amd64 (followed to the versioned image package it
depends on), busybox from busybox-static; both are fetched with `apt-get download` into a
temporary folder and unpacked with `dpkg-deb -x`, nothing is installed. The initramfs holds
busybox, the virtio network modules (in dependency order, read from the modules' own
.modinfo since the package ships no modules.dep), lab/guest/init.sh as /init and
lab/guest/udhcpc.sh as udhcpc's event script (/lib/ttq/udhcpc.script). It is a
newc cpio written here and gzipped, byte for byte the same for the same inputs.

Builds are cached under a key made of the package versions, the two scripts and this
builder's format, so a second build with the same inputs only asks apt-cache for versions.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import pwd
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

DEFAULT_CACHE_DIR = '/var/cache/tuntap-qemu/guest'
KERNEL_META_PACKAGE = 'linux-image-cloud-amd64'
BUSYBOX_PACKAGE = 'busybox-static'
INIT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'init.sh')
# udhcpc's event script (init.sh's DHCP mode), in the initramfs as DHCP_SCRIPT_PATH.
DHCP_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'udhcpc.sh')
DHCP_SCRIPT_PATH = 'lib/ttq/udhcpc.script'
# The virtio NIC and what it needs; dependencies are added from each module's .modinfo.
# button and evdev let a guest with ttq.after=stay power off on QEMU's system_powerdown.
WANTED_MODULES = ('virtio_pci', 'virtio_net', 'button', 'evdev')
# Bump when the layout of the initramfs changes in a way the inputs above do not show.
# 2: /etc, /lib/ttq and udhcpc's event script (DHCP mode).
FORMAT = 2
ENV = dict(os.environ, LC_ALL='C', DEBIAN_FRONTEND='noninteractive')


class GuestBuildError(Exception):
    pass


def run(argv, cwd=None):
    result = subprocess.run(argv, cwd=cwd, env=ENV, text=True, check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise GuestBuildError('%s failed (exit %d): %s' % (' '.join(argv), result.returncode,
                                                           result.stderr.strip()))
    return result.stdout


# ---------------------------------------------------------------- packages

def control_stanzas(text):
    """apt-cache show output -> {package: {field: value}} (first stanza of each package)."""
    stanzas = {}
    for block in re.split(r'\n\s*\n', text):
        fields = dict(re.findall(r'^([A-Za-z-]+): (.*)$', block, re.M))
        if 'Package' in fields:
            stanzas.setdefault(fields['Package'], fields)
    return stanzas


def kernel_image_package(meta_fields):
    """linux-image-cloud-amd64 depends on linux-image-<release>-cloud-amd64 (= version)."""
    for alternative in re.split(r'[,|]', meta_fields.get('Depends', '')):
        match = re.match(r'^\s*(linux-image-(\d\S*-cloud-amd64))\s*\(=\s*([^)\s]+)\)', alternative)
        if match:
            return (match.group(1), match.group(3)), match.group(2)
    raise GuestBuildError('%s %s depends on no linux-image-<release>-cloud-amd64 (= version): %r'
                          % (KERNEL_META_PACKAGE, meta_fields.get('Version'), meta_fields.get('Depends')))


def resolve_packages():
    """{'kernel': (package, version), 'busybox': (...), 'release': kernel release}.

    One apt-cache call: the meta package pins the image package's version exactly.
    """
    text = run(['apt-cache', 'show', '--no-all-versions', KERNEL_META_PACKAGE, BUSYBOX_PACKAGE])
    stanzas = control_stanzas(text)
    for package in (KERNEL_META_PACKAGE, BUSYBOX_PACKAGE):
        if 'Version' not in stanzas.get(package, {}):
            raise GuestBuildError('apt-cache knows no candidate version of %s' % package)
    kernel, release = kernel_image_package(stanzas[KERNEL_META_PACKAGE])
    return {
        'kernel': kernel,
        'busybox': (BUSYBOX_PACKAGE, stanzas[BUSYBOX_PACKAGE]['Version']),
        'release': release,
    }


def package_lists_state():
    """What apt-cache's answer depends on: names, sizes and times of the package lists."""
    state = []
    for folder in ('/var/lib/apt/lists', '/etc/apt/preferences.d'):
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
                info = entry.stat()
                state.append([entry.path, info.st_size, info.st_mtime_ns])
    return state


def resolve_packages_updating(cache_dir):
    """resolve_packages(), remembered while the package lists stay the same, and after one
    `apt-get update` when the lists lack the packages (a fresh machine has no lists)."""
    memo = os.path.join(cache_dir, 'resolved.json')
    lists = package_lists_state()
    with contextlib.suppress(OSError, ValueError, KeyError):
        with open(memo) as handle:
            remembered = json.load(handle)
        if remembered['lists'] == lists:
            resolved = remembered['resolved']
            return {'kernel': tuple(resolved['kernel']), 'busybox': tuple(resolved['busybox']),
                    'release': resolved['release']}
    try:
        resolved = resolve_packages()
    except GuestBuildError:
        run(['apt-get', 'update', '-q'])
        lists = package_lists_state()
        resolved = resolve_packages()
    with contextlib.suppress(OSError):
        with open(memo + '.tmp', 'w') as handle:
            json.dump({'lists': lists, 'resolved': resolved}, handle)
        os.rename(memo + '.tmp', memo)
    return resolved


def download_and_unpack(packages, folder):
    """apt-get download PACKAGE=VERSION...; dpkg-deb -x each into folder/<package>."""
    try:
        # apt drops to _apt for downloads; let it write there (else a warning, same result).
        os.chown(folder, pwd.getpwnam('_apt').pw_uid, -1)
    except (KeyError, PermissionError):
        pass
    run(['apt-get', 'download', '-q'] + ['%s=%s' % package for package in packages], cwd=folder)
    for name, _version in packages:
        debs = [entry for entry in os.listdir(folder)
                if entry.startswith(name + '_') and entry.endswith('.deb')]
        if len(debs) != 1:
            raise GuestBuildError('apt-get download left %r for %s' % (debs, name))
        run(['dpkg-deb', '-x', os.path.join(folder, debs[0]), os.path.join(folder, name)])


# ---------------------------------------------------------------- modules

def read_module(path):
    """The bytes of a .ko, .ko.xz or .ko.gz file, uncompressed (busybox insmod takes plain)."""
    with open(path, 'rb') as handle:
        data = handle.read()
    if path.endswith('.xz'):
        return lzma.decompress(data)
    if path.endswith('.gz'):
        return gzip.decompress(data)
    if path.endswith('.zst'):
        raise GuestBuildError('%s: zstd-compressed modules are not supported' % path)
    return data


def modinfo(elf):
    """The key=value strings of an ELF64 module's .modinfo section, as a dict of lists."""
    if elf[:4] != b'\x7fELF' or elf[4] != 2 or elf[5] != 1:
        raise GuestBuildError('not a 64-bit little-endian ELF module')
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3a)

    def section(index):
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            '<IIQQQQ', elf, shoff + index * shentsize)
        return name, elf[offset:offset + size]

    _name, names = section(shstrndx)
    info = {}
    for index in range(shnum):
        name_offset, data = section(index)
        if names[name_offset:names.index(b'\0', name_offset)] != b'.modinfo':
            continue
        for entry in data.split(b'\0'):
            key, sep, value = entry.decode('utf-8', 'replace').partition('=')
            if sep:
                info.setdefault(key, []).append(value)
    return info


def module_name(filename):
    return re.sub(r'\.ko(\.(xz|gz|zst))?$', '', os.path.basename(filename)).replace('-', '_')


def index_modules(modules_dir):
    """{name: path} of every module file below modules_dir/kernel, and the built-in names."""
    files = {}
    for root, _dirs, names in os.walk(os.path.join(modules_dir, 'kernel')):
        for name in names:
            if re.search(r'\.ko(\.(xz|gz|zst))?$', name):
                files[module_name(name)] = os.path.join(root, name)
    builtin = set()
    builtin_list = os.path.join(modules_dir, 'modules.builtin')
    if os.path.exists(builtin_list):
        with open(builtin_list) as handle:
            builtin = {module_name(line.strip()) for line in handle if line.strip()}
    return files, builtin


def module_load_order(wanted, files, builtin):
    """Modules to load for `wanted`, dependencies first, and each module's contents.

    Returns ([(name, bytes)], sorted built-in names that were asked for or depended on).
    """
    order, contents, seen_builtin, visiting = [], {}, set(), set()

    def visit(name, chain):
        name = name.replace('-', '_')
        if name in contents or name in seen_builtin:
            return
        if name in builtin:
            seen_builtin.add(name)
            return
        if name not in files:
            raise GuestBuildError('module %s (needed by %s) is neither built in nor shipped'
                                  % (name, ' <- '.join(chain) or 'the guest'))
        if name in visiting:
            raise GuestBuildError('module dependency loop: %s' % ' -> '.join(chain + [name]))
        visiting.add(name)
        data = read_module(files[name])
        for dependency in modinfo(data).get('depends', []):
            for dep in filter(None, dependency.split(',')):
                visit(dep, chain + [name])
        contents[name] = data
        order.append(name)

    for name in wanted:
        visit(name, [])
    return [(name, contents[name]) for name in order], sorted(seen_builtin)


# ---------------------------------------------------------------- initramfs

class NewcArchive:
    """A cpio archive in the kernel's "newc" format, with fixed owners and times."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.inode = 0

    def _entry(self, name, mode, data=b'', rdev=(0, 0)):
        self.inode += 1
        encoded = name.encode() + b'\0'
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.buffer.write(b'070701' + b''.join(b'%08X' % field for field in fields))
        self.buffer.write(encoded)
        self.buffer.write(b'\0' * (-(110 + len(encoded)) % 4))
        self.buffer.write(data)
        self.buffer.write(b'\0' * (-len(data) % 4))

    def directory(self, name):
        self._entry(name, 0o040755)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name, major, minor):
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self):
        self.inode = 0
        self._entry('TRAILER!!!', 0)
        return self.buffer.getvalue()


def initramfs(busybox, init_script, modules, dhcp_script):
    archive = NewcArchive()
    for name in ('bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'lib', 'lib/modules', 'lib/ttq'):
        archive.directory(name)
    archive.char_device('dev/console', 5, 1)
    archive.file('bin/busybox', busybox, 0o755)
    archive.symlink('bin/sh', 'busybox')
    archive.file('init', init_script, 0o755)
    archive.file(DHCP_SCRIPT_PATH, dhcp_script, 0o755)
    for name, data in modules:
        archive.file('lib/modules/%s.ko' % name, data)
    archive.file('lib/modules/load-order', ''.join('%s.ko\n' % name for name, _data in modules).encode())
    # mtime=0: the same inputs give the same bytes.
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


# ---------------------------------------------------------------- build and cache

def cache_key(resolved, init_script, dhcp_script):
    material = json.dumps({
        'format': FORMAT,
        'kernel': resolved['kernel'],
        'busybox': resolved['busybox'],
        'modules': WANTED_MODULES,
        'init_sha256': hashlib.sha256(init_script).hexdigest(),
        'dhcp_script_sha256': hashlib.sha256(dhcp_script).hexdigest(),
    }, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _build_into(folder, resolved, init_script, dhcp_script):
    work = tempfile.mkdtemp(prefix='unpack-', dir=folder)
    try:
        download_and_unpack([resolved['kernel'], resolved['busybox']], work)
        kernel_root = os.path.join(work, resolved['kernel'][0])
        vmlinuz = os.path.join(kernel_root, 'boot', 'vmlinuz-%s' % resolved['release'])
        modules_dir = os.path.join(kernel_root, 'lib', 'modules', resolved['release'])
        for path in (vmlinuz, modules_dir):
            if not os.path.exists(path):
                raise GuestBuildError('%s %s has no %s' % (resolved['kernel'] + (path,)))
        files, builtin = index_modules(modules_dir)
        modules, builtin_used = module_load_order(WANTED_MODULES, files, builtin)
        with open(os.path.join(work, resolved['busybox'][0], 'bin', 'busybox'), 'rb') as handle:
            busybox = handle.read()
        shutil.copyfile(vmlinuz, os.path.join(folder, 'vmlinuz'))
        with open(os.path.join(folder, 'initrd.gz'), 'wb') as handle:
            handle.write(initramfs(busybox, init_script, modules, dhcp_script))
        return [name for name, _data in modules], builtin_used
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _locked(cache_dir):
    """One build at a time per cache folder; the others wait and then find it cached."""
    with open(os.path.join(cache_dir, '.lock'), 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _cached_or_built(cache_dir, resolved, init_script, dhcp_script):
    """The manifest of the guest for these inputs, built under the lock if not cached yet."""
    key = cache_key(resolved, init_script, dhcp_script)
    folder = os.path.join(cache_dir, key)
    manifest_path = os.path.join(folder, 'manifest.json')
    with _locked(cache_dir):
        cached = os.path.exists(manifest_path)
        if not cached:
            staging = tempfile.mkdtemp(prefix='.build-', dir=cache_dir)
            try:
                # QEMU may run as another user: the guest files are world-readable.
                os.chmod(staging, 0o755)
                modules, builtin_used = _build_into(staging, resolved, init_script, dhcp_script)
                manifest = {
                    'key': key,
                    'kernel_package': '%s=%s' % resolved['kernel'],
                    'busybox_package': '%s=%s' % resolved['busybox'],
                    'kernel_release': resolved['release'],
                    'modules': modules,
                    'builtin_modules': builtin_used,
                    'init_sha256': hashlib.sha256(init_script).hexdigest(),
                    'dhcp_script_sha256': hashlib.sha256(dhcp_script).hexdigest(),
                }
                with open(os.path.join(staging, 'manifest.json'), 'w') as handle:
                    json.dump(manifest, handle, indent=2, sort_keys=True)
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    manifest.update(kernel=os.path.join(folder, 'vmlinuz'), initrd=os.path.join(folder, 'initrd.gz'),
                    cached=cached)
    return manifest


def build_guest(cache_dir=DEFAULT_CACHE_DIR, init_path=INIT_SCRIPT, dhcp_script_path=DHCP_SCRIPT):
    """Build (or find cached) the test guest; returns kernel, initrd and how it was made.

    {'kernel': path, 'initrd': path, 'build_seconds': float, 'cached': bool,
     'kernel_package': 'linux-image-...=version', 'busybox_package': ..., 'modules': [...],
     'builtin_modules': [...], 'kernel_release': ..., 'key': ...}
    """
    start = time.monotonic()
    with open(init_path, 'rb') as handle:
        init_script = handle.read()
    with open(dhcp_script_path, 'rb') as handle:
        dhcp_script = handle.read()
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    resolved = resolve_packages_updating(cache_dir)
    try:
        manifest = _cached_or_built(cache_dir, resolved, init_script, dhcp_script)
    except GuestBuildError:
        # Stale package lists may name versions the mirror no longer has: update once and
        # build what the fresh lists name (under its own key).
        run(['apt-get', 'update', '-q'])
        fresh = resolve_packages_updating(cache_dir)
        if fresh == resolved:
            raise
        manifest = _cached_or_built(cache_dir, fresh, init_script, dhcp_script)
    manifest['build_seconds'] = round(time.monotonic() - start, 2)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--cache-dir', default=DEFAULT_CACHE_DIR,
                        help='where built guests are kept (default %(default)s)')
    parser.add_argument('--json', action='store_true', help='print the result as JSON')
    args = parser.parse_args(argv)
    try:
        guest = build_guest(args.cache_dir)
    except GuestBuildError as error:
        print('build_guest: %s' % error, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(guest, indent=2, sort_keys=True))
    else:
        print('kernel:  %s (%s)' % (guest['kernel'], guest['kernel_package']))
        print('initrd:  %s (%s, modules %s)' % (guest['initrd'], guest['busybox_package'],
                                                ' '.join(guest['modules'])))
        print('%s in %.2f s' % ('cached' if guest['cached'] else 'built', guest['build_seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
