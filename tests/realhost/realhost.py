# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Debian 12 host under QEMU, on a LAN made of network namespaces, reached over SSH.

    realhost.py up [--prefix P] [--uplink static|dhcp]   boot one VM and keep it (debugging)
    realhost.py cleanup --prefix P                       stop and remove what prefix P left

Layout of one VM (each VM has its own LAN, so every VM keeps the image's 10.44.0.50):
    <prefix>sw     the LAN switch: bridge lan0; the VM's tap vm0 is a port of it, QEMU runs
                   here (`ip netns exec <prefix>sw qemu-system-x86_64 ...`)
    <prefix>ctl    the controller, eth0 10.44.0.10/24: ansible-playbook runs here with
                   Ansible's ordinary ssh connection (user ttq, the image's key, become)
    <prefix>peer   a LAN host, eth0 10.44.0.20/24 and the LAN's gateway 10.44.0.1/24

Every link is created inside these namespaces (veths are born in the switch namespace with
their other end in the controller's or the peer's): nothing touches the root namespace.
QEMU is ended by the pid in its own pidfile, after checking that the process is the QEMU
of that pidfile; the namespaces and the VM's state folder (overlay, serial log, inventory)
are removed on exit, on SIGTERM/SIGINT and at interpreter exit.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import build_image  # noqa: E402  pylint: disable=wrong-import-position

STATE_ROOT = '/var/tmp/tuntap-qemu-realhost'
VENV = os.environ.get('TUNTAP_VENV', '/var/cache/tuntap-qemu/venv')
HOST_ADDRESS = '10.44.0.50'
CONTROLLER_ADDRESS = '10.44.0.10'
PEER_ADDRESS = '10.44.0.20'
GATEWAY_ADDRESS = '10.44.0.1'
PREFIX_LEN = 24
USER = 'ttq'
BOOT_TIMEOUT = 240
DEFAULT_CPU = 'max'
ENV = dict(os.environ, LC_ALL='C.UTF-8')
# The prefix names namespaces and the state folder; the links inside a namespace have
# short fixed names (lan0, vm0, eth0), so the prefix never reaches the 15-byte limit.
PREFIX = re.compile(r'^ttqr[a-z0-9-]{1,20}-$')
SSH_OPTIONS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
               '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes']
# Vm.ssh: how often a connection whose banner came too late is made again (measured: a
# routed_nat VM booting two TCG guests while its converge ran on a machine at load 8).
SSH_BANNER_RETRIES = 5

_active = {}
_active_lock = threading.Lock()
_counter = [0]


class RealHostError(Exception):
    pass


def run(argv, netns=None, check=True, capture=True, timeout=None, input_text=None):
    if netns:
        argv = ['ip', 'netns', 'exec', netns] + list(argv)
    # Without input, stdin is /dev/null: an ssh given the stage's own stdin makes it
    # non-blocking, and an ansible-playbook started beside it refuses to run.
    result = subprocess.run(argv, env=ENV, text=True, check=False, timeout=timeout, input=input_text,
                            stdin=subprocess.DEVNULL if input_text is None else None,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.STDOUT if capture else None)
    if check and result.returncode != 0:
        output = (result.stdout or '').strip()[-2000:]
        raise RealHostError('%s failed (exit %d): %s' % (' '.join(argv), result.returncode, output))
    return result


def new_prefix():
    with _active_lock:
        _counter[0] += 1
        return 'ttqr%d-%d-' % (os.getpid(), _counter[0])


def accelerator():
    """TCG unless TUNTAP_REALHOST_ACCEL says otherwise: /dev/kvm exists on our machines but
    KVM guests do not boot there."""
    return os.environ.get('TUNTAP_REALHOST_ACCEL', 'tcg')


def cpu_model():
    """QEMU's CPU for the host VM (TUNTAP_REALHOST_CPU overrides it). Under TCG, `max`
    offers svm, so the host's /dev/kvm looks usable: the stage's guests ask for tcg.
    Measured here: `max,svm=off` breaks the Debian boot (mounts and udev fail), and
    `qemu64` boots several times slower."""
    return os.environ.get('TUNTAP_REALHOST_CPU', DEFAULT_CPU)


def qemu_of_pidfile(pidfile):
    """The pid in pidfile if it is alive and is the process started with that pidfile
    (QEMU's `-pidfile PATH`, dnsmasq's `--pid-file=PATH`), else None."""
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            args = handle.read().split(b'\0')
    except (OSError, ValueError):
        return None
    if any(arg == b'-pidfile' and value == pidfile.encode() for arg, value in zip(args, args[1:])):
        return pid
    if ('--pid-file=%s' % pidfile).encode() in args:
        return pid
    return None


def stop_qemu(pidfile, timeout=10):
    """End the process of pidfile (see qemu_of_pidfile): SIGTERM, then SIGKILL."""
    pid = qemu_of_pidfile(pidfile)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while os.path.exists('/proc/%d' % pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if qemu_of_pidfile(pidfile) == pid:
        os.kill(pid, signal.SIGKILL)
    return True


def namespaces_with(prefix):
    result = run(['ip', 'netns', 'list'])
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(prefix)]


def cleanup_prefix(prefix):
    """Remove what a VM (or every VM of a run: prefix ttqr<pid>-) left: its QEMU by its
    pidfile, its namespaces, its state folder."""
    if not prefix.startswith('ttqr'):
        raise RealHostError('refusing prefix %r: realhost prefixes start with ttqr' % prefix)
    removed = []
    if os.path.isdir(STATE_ROOT):
        for name in sorted(os.listdir(STATE_ROOT)):
            if not (name + '-').startswith(prefix) and not name.startswith(prefix):
                continue
            folder = os.path.join(STATE_ROOT, name)
            controller = '/run/netns/%s-ctl' % name
            sockets = os.path.join(folder, 'cp')
            for socket_name in sorted(os.listdir(sockets)) if os.path.isdir(sockets) and os.path.exists(controller) else ():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run(['nsenter', '--net=%s' % controller, 'ssh', '-o', 'ControlPath=%s' % os.path.join(sockets, socket_name),
                         '-O', 'exit', '%s@%s' % (USER, HOST_ADDRESS)], check=False, timeout=10)
                removed.append('ssh master %s' % socket_name)
            if stop_qemu(os.path.join(folder, 'qemu.pid')):
                removed.append('qemu of %s' % name)
            if stop_qemu(os.path.join(folder, 'dnsmasq.pid')):
                removed.append('dnsmasq of %s' % name)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    for ns in namespaces_with(prefix):
        run(['ip', 'netns', 'del', ns], check=False)
        removed.append('netns %s' % ns)
    return removed


def teardown_all():
    with _active_lock:
        vms = list(_active.values())
    for vm in vms:
        vm.down()


def _on_signal(signum, _frame):
    teardown_all()
    raise SystemExit(128 + signum)


def install_handlers():
    """Teardown on exit and on SIGTERM/SIGINT (call from the main thread)."""
    atexit.register(teardown_all)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)


def lay_out_collection(target_root):
    """The work tree as target_root/ansible_collections/tuntap/qemu (the files git lists,
    tracked and untracked, as tests/run.sh lays it out)."""
    collection = os.path.join(target_root, 'ansible_collections', 'tuntap', 'qemu')
    os.makedirs(collection, exist_ok=True)
    listed = run(['git', '-C', REPO, 'ls-files', '-z', '-co', '--exclude-standard']).stdout
    for path in listed.split('\0'):
        source = os.path.join(REPO, path)
        if not path or not (os.path.isfile(source) or os.path.islink(source)):
            continue
        target = os.path.join(collection, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return target_root


class Vm:
    """One Debian host VM on its own namespace LAN. Use as a context manager."""

    def __init__(self, image, prefix=None, memory=1536, collections_path=None, log=None):
        """image: a build_image folder; its uplink variant (image.json) decides whether the
        LAN peer serves DHCP (dnsmasq: 10.44.0.50 for the VM's MAC, router 10.44.0.1)."""
        self.image = image
        with open(os.path.join(image, 'image.json')) as handle:
            self.uplink = json.load(handle)['uplink']
        self.prefix = prefix or new_prefix()
        if not PREFIX.match(self.prefix):
            raise RealHostError('prefix %r must match %s' % (self.prefix, PREFIX.pattern))
        self.switch = self.prefix + 'sw'
        self.controller = self.prefix + 'ctl'
        self.peer = self.prefix + 'peer'
        self.state = os.path.join(STATE_ROOT, self.prefix.rstrip('-'))
        self.pidfile = os.path.join(self.state, 'qemu.pid')
        self.overlay = os.path.join(self.state, 'overlay.qcow2')
        self.serial_log = os.path.join(self.state, 'serial.log')
        self.key = os.path.join(image, 'id_ed25519')
        self.memory = memory
        self.collections_path = collections_path
        self.mac = '52:54:00:44:00:50'
        self.boot_seconds = None
        self.children = []
        self.log = log or (lambda message: print(message, flush=True))

    # ------------------------------------------------------------ lifecycle
    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        with _active_lock:
            _active[self.prefix] = self
        cleanup_prefix(self.prefix)
        os.makedirs(os.path.join(self.state, 'cp'), exist_ok=True)
        self.make_lan()
        if self.uplink == 'dhcp':
            self.start_dhcp_server()
        self.start_qemu()
        self.wait_for_ssh()

    def down(self):
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(5)
                if child.poll() is None:
                    child.kill()
        self.children = []
        self.close_ssh_masters()
        stop_qemu(self.pidfile)
        stop_qemu(os.path.join(self.state, 'dnsmasq.pid'))
        for ns in (self.controller, self.peer, self.switch):
            if ns in namespaces_with(ns):
                run(['ip', 'netns', 'del', ns], check=False)
        shutil.rmtree(self.state, ignore_errors=True)
        with _active_lock:
            _active.pop(self.prefix, None)

    def close_ssh_masters(self):
        """End the SSH masters of this VM (Ansible's and the stage's, all with their
        sockets in the VM's cp folder, all started through in_controller) through their
        sockets: `ssh -O exit`."""
        folder = os.path.join(self.state, 'cp')
        if not os.path.isdir(folder) or self.controller not in namespaces_with(self.controller):
            return
        for name in sorted(os.listdir(folder)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                run(self.in_controller(['ssh', '-o', 'ControlPath=%s' % os.path.join(folder, name), '-O', 'exit',
                                        '%s@%s' % (USER, HOST_ADDRESS)]), check=False, timeout=10)

    def make_lan(self):
        for ns in (self.switch, self.controller, self.peer):
            run(['ip', 'netns', 'add', ns])
            run(['ip', 'link', 'set', 'lo', 'up'], netns=ns)
        run(['ip', 'link', 'add', 'lan0', 'type', 'bridge'], netns=self.switch)
        run(['ip', 'link', 'set', 'lan0', 'up'], netns=self.switch)
        for port, ns, addresses in (('p-ctl', self.controller, [CONTROLLER_ADDRESS]),
                                    ('p-peer', self.peer, [PEER_ADDRESS, GATEWAY_ADDRESS])):
            run(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
                netns=self.switch)
            run(['ip', 'link', 'set', port, 'master', 'lan0', 'up'], netns=self.switch)
            for address in addresses:
                run(['ip', 'addr', 'add', '%s/%d' % (address, PREFIX_LEN), 'dev', 'eth0'], netns=ns)
            run(['ip', 'link', 'set', 'eth0', 'up'], netns=ns)
        run(['ip', 'tuntap', 'add', 'dev', 'vm0', 'mode', 'tap'], netns=self.switch)
        run(['ip', 'link', 'set', 'vm0', 'master', 'lan0', 'up'], netns=self.switch)

    def start_dhcp_server(self):
        """dnsmasq in the LAN peer, DHCP only (no DNS), the VM's address fixed by its MAC."""
        self.spawn(['dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null',
                    '--port=0', '--user=root', '--no-resolv', '--no-hosts', '--interface=eth0', '--bind-interfaces',
                    '--dhcp-range=10.44.0.100,10.44.0.199,255.255.255.0,1h',
                    '--dhcp-host=%s,%s' % (self.mac, HOST_ADDRESS),
                    '--dhcp-option=option:router,%s' % GATEWAY_ADDRESS,
                    '--dhcp-leasefile=%s' % os.path.join(self.state, 'dnsmasq.leases'),
                    '--pid-file=%s' % os.path.join(self.state, 'dnsmasq.pid')],
                   netns=self.peer, stdout=subprocess.DEVNULL)

    def qemu_argv(self):
        image = self.image
        append = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 quiet'
        return ['qemu-system-x86_64',
                '-name', 'ttqhost-%s' % self.prefix.rstrip('-'),
                '-machine', 'pc', '-accel', accelerator(), '-cpu', cpu_model(),
                '-m', str(self.memory), '-smp', '1',
                '-nodefaults', '-no-user-config', '-display', 'none',
                '-kernel', os.path.join(image, 'vmlinuz'),
                '-initrd', os.path.join(image, 'initrd.img'),
                '-append', append,
                '-drive', 'file=%s,if=virtio,format=qcow2,cache=unsafe,discard=unmap' % self.overlay,
                '-netdev', 'tap,id=n0,ifname=vm0,script=no,downscript=no',
                '-device', 'virtio-net-pci,netdev=n0,mac=%s' % self.mac,
                '-serial', 'file:%s' % self.serial_log,
                '-pidfile', self.pidfile, '-daemonize']

    def start_qemu(self):
        run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b',
             os.path.join(self.image, 'root.img'), self.overlay])
        self.started = time.monotonic()
        run(self.qemu_argv(), netns=self.switch)

    def serial_tail(self, lines=40):
        try:
            with open(self.serial_log, errors='replace') as handle:
                return '\n'.join(handle.read().splitlines()[-lines:])
        except OSError:
            return '(no serial log)'

    def alive(self):
        return qemu_of_pidfile(self.pidfile) is not None

    # ------------------------------------------------------------ reaching the VM
    def ssh_argv(self, *command):
        """ssh to the host running `command` as an argv: each word is quoted for the remote
        shell (ssh itself joins its arguments with spaces)."""
        remote = [shlex.join(command)] if command else []
        return (['ssh', '-i', self.key] + SSH_OPTIONS + self.mux_options() + [
            '-o', 'ConnectTimeout=3', '%s@%s' % (USER, HOST_ADDRESS)] + remote)

    def mux_options(self):
        """Through the stage's SSH master when it is there (a key exchange costs about a
        second under TCG), directly when not: clients never become masters, since a master
        forked by a client would hold the client's output pipe open."""
        return ['-o', 'ControlMaster=no', '-o', 'ControlPath=%s' % self.stage_socket()]

    def stage_socket(self):
        return os.path.join(self.state, 'cp', 'stage')

    def open_ssh_master(self):
        """The stage's SSH master, its output on /dev/null: it runs `true` and stays
        (ControlPersist; a master made with -N refuses sessions). It ends within seconds
        when the VM goes away (ServerAlive), and at teardown through -O exit."""
        argv = (['ssh', '-i', self.key] + SSH_OPTIONS + [
            '-o', 'ControlMaster=yes', '-o', 'ControlPath=%s' % self.stage_socket(),
            '-o', 'ControlPersist=300', '-o', 'ServerAliveInterval=2', '-o', 'ServerAliveCountMax=3',
            '-o', 'ConnectTimeout=3', '%s@%s' % (USER, HOST_ADDRESS), 'true'])
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(self.in_controller(argv), env=ENV, timeout=20,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)

    def ssh_master_alive(self):
        if not os.path.exists(self.stage_socket()):
            return False
        result = subprocess.run(self.in_controller(['ssh', '-o', 'ControlPath=%s' % self.stage_socket(),
                                                    '-O', 'check', '%s@%s' % (USER, HOST_ADDRESS)]),
                                env=ENV, check=False, timeout=10,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0

    def copy_to(self, source, target, mode='0644'):
        """Copy a local file to the host as root (scp to ttq's home, then install)."""
        staged = '/home/%s/.%s' % (USER, os.path.basename(target))
        if not self.ssh_master_alive():
            self.open_ssh_master()
        run(self.in_controller(['scp', '-q', '-i', self.key] + SSH_OPTIONS + self.mux_options()
                               + [source, '%s@%s:%s' % (USER, HOST_ADDRESS, staged)]), timeout=120)
        self.ssh('sudo', 'install', '-D', '-m', mode, staged, target)
        self.ssh('rm', '-f', staged)

    def ssh(self, *command, check=True, timeout=120, input_text=None):
        """command on the host (through the stage's master when it is there). A connection
        the host accepted but did not answer within ConnectTimeout ("Connection timed out
        during banner exchange": its one vCPU runs booting TCG guests, and the master's
        keepalive gave up) is made again, up to SSH_BANNER_RETRIES times; a host that does
        not answer at all fails at once."""
        for attempt in range(SSH_BANNER_RETRIES + 1):
            if self.boot_seconds is not None and not self.ssh_master_alive():
                self.open_ssh_master()
            argv = self.in_controller(self.ssh_argv(*command))
            result = run(argv, check=False, timeout=timeout, input_text=input_text)
            if result.returncode != 255 or 'banner exchange' not in (result.stdout or ''):
                break
            if attempt < SSH_BANNER_RETRIES:
                self.log('ssh: %s; again (%d of %d)' % (result.stdout.strip()[-120:], attempt + 1, SSH_BANNER_RETRIES))
                time.sleep(2)
        if check and result.returncode != 0:
            output = (result.stdout or '').strip()[-2000:]
            raise RealHostError('%s failed (exit %d): %s' % (' '.join(argv), result.returncode, output))
        return result

    def in_controller(self, argv):
        """argv in the controller's network namespace only (nsenter --net). Unlike
        `ip netns exec`, which gives every command a mount namespace of its own, this keeps
        one: an SSH master refuses clients from another mount namespace."""
        return ['nsenter', '--net=/run/netns/%s' % self.controller] + list(argv)

    def wait_for_ssh(self, timeout=BOOT_TIMEOUT):
        """TCP 22 and a login from the controller, then an Ansible ping."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RealHostError('%s: QEMU is not running; serial log:\n%s' % (self.prefix, self.serial_tail()))
            try:
                if self.ssh('true', check=False, timeout=15).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise RealHostError('%s: no SSH at %s after %ds; serial log:\n%s'
                                    % (self.prefix, HOST_ADDRESS, timeout, self.serial_tail()))
            time.sleep(1)
        self.boot_seconds = time.monotonic() - self.started
        result = self.ansible('-m', 'ansible.builtin.ping', check=False)
        if result.returncode != 0:
            raise RealHostError('%s: SSH works but the Ansible ping failed:\n%s' % (self.prefix, result.stdout[-3000:]))

    # ------------------------------------------------------------ Ansible from the controller
    def ansible_env(self):
        env = {
            'PATH': '%s/bin:%s' % (VENV, os.environ.get('PATH', '/usr/bin:/bin')),
            'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(self.state, 'cp'),
            'ANSIBLE_PIPELINING': 'True', 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0',
            'ANSIBLE_RETRY_FILES_ENABLED': 'False', 'ANSIBLE_HOST_KEY_CHECKING': 'False',
            'ANSIBLE_LOCAL_TEMP': os.path.join(self.state, 'ansible-tmp'),
            # The connection's and become's timeout (default 10 s; become waits for its
            # prompt a little longer): a TCG VM beside another one on a busy 2-core machine
            # took longer than that to answer sudo right after its boot (22:16 run:
            # "Timeout (12s) waiting for privilege escalation prompt" on the first ping).
            'ANSIBLE_TIMEOUT': '60',
        }
        if self.collections_path:
            env['ANSIBLE_COLLECTIONS_PATH'] = self.collections_path
        return env

    def host_vars(self):
        """How the controller reaches this VM: the ordinary ssh connection with become."""
        return {
            'ansible_host': HOST_ADDRESS, 'ansible_user': USER, 'ansible_connection': 'ssh',
            'ansible_ssh_private_key_file': self.key, 'ansible_become': True,
            'ansible_ssh_common_args': ' '.join(SSH_OPTIONS[:6] + [
                '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=6']),
            'ansible_python_interpreter': '/usr/bin/python3',
        }

    def write_inventory(self, name='inventory.json', hostvars=None, group='hypervisors'):
        """An inventory of this one host (hostname ttqhost) with hostvars on top of host_vars()."""
        host = dict(self.host_vars(), **(hostvars or {}))
        path = os.path.join(self.state, name)
        with open(path, 'w') as handle:
            json.dump({'all': {'children': {group: {'hosts': {'ttqhost': host}}}}}, handle, indent=1)
        return path

    def _ansible_argv(self, tool, args):
        return ['env'] + ['%s=%s' % item for item in sorted(self.ansible_env().items())] + [
            os.path.join(VENV, 'bin', tool)] + list(args)

    def ansible(self, *args, inventory=None, check=True, timeout=300):
        inventory = inventory or self.write_inventory('ping.json')
        return run(self.in_controller(self._ansible_argv('ansible', ['-i', inventory, 'ttqhost'] + list(args))),
                   check=check, timeout=timeout)

    def playbook(self, playbook, inventory, extra_args=(), log_path=None, timeout=900):
        """Run ansible-playbook from the controller namespace; (rc, output, seconds).
        The output goes to log_path as it comes (default: the VM's state folder)."""
        argv = self._ansible_argv('ansible-playbook', ['-i', inventory, playbook] + list(extra_args))
        log_path = log_path or os.path.join(self.state, 'playbook.log')
        started = time.monotonic()
        with open(log_path, 'w') as log:
            process = self.spawn(self.in_controller(argv), stdout=log)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                log.write('\n[realhost] ansible-playbook killed after %ds\n' % timeout)
        self.children.remove(process)
        with open(log_path) as log:
            output = log.read()
        return process.returncode, output, time.monotonic() - started

    def spawn(self, argv, netns=None, stdout=subprocess.PIPE):
        """A child process this VM ends at teardown (by its Popen object, i.e. its pid)."""
        if netns:
            argv = ['ip', 'netns', 'exec', netns] + list(argv)
        process = subprocess.Popen(argv, env=ENV, text=True, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=subprocess.STDOUT)
        self.children.append(process)
        return process


def recap(output, host='ttqhost'):
    """{ok, changed, unreachable, failed, ...} of host in a PLAY RECAP, or None."""
    match = None
    for match in re.finditer(r'^%s\s*:\s*(.*)$' % re.escape(host), output, re.M):
        pass
    if match is None:
        return None
    return dict((key, int(value)) for key, value in re.findall(r'(\w+)=(\d+)', match.group(1)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=['up', 'cleanup'])
    parser.add_argument('--prefix')
    parser.add_argument('--uplink', default='static', choices=sorted(build_image.UPLINKS))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit('realhost.py creates network namespaces: run it as root')
    if args.command == 'cleanup':
        if not args.prefix:
            raise SystemExit('cleanup needs --prefix (the prefix of the run to clean up, e.g. ttqr1234-)')
        for item in cleanup_prefix(args.prefix):
            print('removed %s' % item)
        return 0
    image, built = build_image.build(uplink=args.uplink)
    if built:
        print('image built in %.0fs' % built)
    vm = Vm(image, prefix=args.prefix)
    vm.up()
    print('VM up in %.1fs; serial log %s' % (vm.boot_seconds, vm.serial_log))
    print('ssh: %s' % ' '.join(vm.in_controller(vm.ssh_argv())))
    print('remove it with: %s cleanup --prefix %s' % (sys.argv[0], vm.prefix))
    return 0


if __name__ == '__main__':
    sys.exit(main())
