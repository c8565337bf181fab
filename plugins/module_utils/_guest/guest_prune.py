# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which guests of ours a host has, and which of them a prune (qemu_guest prune=true) removes.

A guest is ours when it carries one of our marks:
  - a runtime directory under the runtime root, named after the guest, whose argv.json is the
    command line of a daemonized start of that guest with that directory's pidfile;
  - a unit file tuntap-qemu-guest-NAME.service whose first line is our header
    (guest_unit.MARK); its ExecStart= names the runtime directory (-pidfile).
A directory or unit without the mark is the admin's and is never listed. Reading only: the
removal itself is qemu_guest's state=absent path (qemu_guest_run.PruneSteps).
"""

from __future__ import annotations

import dataclasses
import os
import shlex

from ansible_collections.tuntap.qemu.plugins.module_utils import files
from ansible_collections.tuntap.qemu.plugins.module_utils._guest import guest_plan, guest_unit, qemu


@dataclasses.dataclass(frozen=True)
class FoundGuest:
    """A guest of ours on the host: its runtime directory and unit file (None: it has none)."""

    name: str
    runtime_dir: str
    unit_path: str | None = None


@dataclasses.dataclass(frozen=True)
class ForeignHolder:
    """A runtime directory of ours that a prune leaves with its process: the live process in
    its pidfile is not our QEMU but uses that directory (its command line names it), or it is
    our QEMU but runs in another network namespace (another host of the namespace lab that
    shares the runtime root), so it is not this host's guest."""

    name: str
    runtime_dir: str
    pid: int
    cmdline: tuple
    other_netns: bool = False

    @property
    def reason(self):
        pidfile = os.path.join(self.runtime_dir, qemu.PIDFILE)
        if self.other_netns:
            return ('pid %d in %s runs in another network namespace than this module, so it is '
                    "another host's guest; neither is touched" % (self.pid, pidfile))
        return ('pid %d in %s is not the QEMU tuntap.qemu started there (its command line differs '
                'from argv.json) but uses that folder; neither is touched' % (self.pid, pidfile))


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    """The guests a prune removes and the guests of ours it keeps, by name."""

    remove: tuple
    kept: tuple
    skipped: tuple


def is_guest_name(name):
    return bool(guest_plan.GUEST_NAME.match(name or ''))


def runtime_dir_is_ours(directory, name):
    """True when `directory` carries our mark for guest `name`: argv.json is a QEMU command line
    for that guest with this directory's pidfile (what qemu.start() records)."""
    argv = qemu.read_argv(os.path.join(directory, qemu.ARGV_FILE))
    return (argv is not None and qemu.names_guest(argv, name)
            and qemu.option_value(argv, '-pidfile') == qemu.paths(directory)['pidfile'])


def find_runtime_dirs(root):
    """{name: directory} of the runtime directories of ours directly under `root` (sorted)."""
    try:
        entries = sorted(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for entry in entries:
        directory = os.path.join(root, entry)
        if (is_guest_name(entry) and os.path.isdir(directory) and not os.path.islink(directory)
                and runtime_dir_is_ours(directory, entry)):
            found[entry] = directory
    return found


def unit_guest_name(filename):
    """The guest name in a unit file name tuntap-qemu-guest-NAME.service, or None."""
    suffix = '.service'
    if not (filename.startswith(guest_unit.UNIT_PREFIX) and filename.endswith(suffix)):
        return None
    name = filename[len(guest_unit.UNIT_PREFIX):-len(suffix)]
    return name if is_guest_name(name) else None


def unit_exec_start(text):
    """The ExecStart= command line of a unit file's text (continuation lines joined, systemd's
    %% and $$ undone), as a list; None when it has none or it does not parse."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith('ExecStart='):
            continue
        value = line[len('ExecStart='):]
        while value.endswith('\\') and index + 1 < len(lines):
            index += 1
            value = value[:-1] + ' ' + lines[index].strip()
        try:
            words = shlex.split(value)
        except ValueError:
            return None
        return [word.replace('%%', '%').replace('$$', '$') for word in words]
    return None


def unit_runtime_dir(text):
    """The runtime directory of our unit file's guest (the folder of its -pidfile), or None."""
    argv = unit_exec_start(text or '')
    pidfile = qemu.option_value(argv, '-pidfile') if argv else None
    return os.path.dirname(pidfile) if pidfile and os.path.isabs(pidfile) else None


def find_units(unit_dir):
    """{name: (unit file, runtime directory or None)} of the unit files of ours in `unit_dir`."""
    try:
        entries = sorted(os.listdir(unit_dir))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for entry in entries:
        name = unit_guest_name(entry)
        path = os.path.join(unit_dir, entry)
        if name is None or os.path.islink(path) or not os.path.isfile(path):
            continue
        text = files.read_text(path)
        if guest_unit.is_ours(text):
            found[name] = (path, unit_runtime_dir(text))
    return found


def found_guests(runtime_dirs, units, root):
    """[FoundGuest] by name from find_runtime_dirs() and find_units() (units: {} without systemd).

    A guest's runtime directory is the one of ours under the root, else its unit's, else
    ROOT/NAME (a unit whose guest never ran)."""
    guests = []
    for name in sorted(set(runtime_dirs) | set(units)):
        unit_path, unit_dir = units.get(name, (None, None))
        directory = runtime_dirs.get(name) or unit_dir or os.path.join(root, name)
        guests.append(FoundGuest(name, directory, unit_path))
    return guests


def netns_inode(pid='self'):
    """The inode of a process's network namespace, or None when it cannot be read."""
    try:
        return os.stat('/proc/%s/ns/net' % pid).st_ino
    except OSError:
        return None


def foreign_holder(guest):
    """ForeignHolder when the pidfile of the guest's runtime directory names a live process that
    is our QEMU in another network namespace, or that is not our QEMU (qemu.process_is_ours) and
    whose command line names that directory; else None.

    A stale pidfile whose pid now belongs to some unrelated process is no holder: the directory
    goes and the process is left alone."""
    paths = qemu.paths(guest.runtime_dir)
    pid = qemu.read_pid(paths['pidfile'])
    if pid is None:
        return None
    args = qemu.process_argv(pid)
    if args is None:
        return None
    if qemu.process_is_ours(pid, guest.name, paths):
        theirs, ours = netns_inode(pid), netns_inode()
        if None not in (theirs, ours) and theirs != ours:
            return ForeignHolder(guest.name, guest.runtime_dir, pid, tuple(args), other_netns=True)
        return None
    inside = guest.runtime_dir.rstrip('/') + '/'
    if any(arg == guest.runtime_dir or inside in arg for arg in args):
        return ForeignHolder(guest.name, guest.runtime_dir, pid, tuple(args))
    return None


def plan_prune(guests, keep, holders=()):
    """PrunePlan: every found guest not named in `keep` goes, except those with a ForeignHolder."""
    keep = set(keep)
    held = {holder.name: holder for holder in holders}
    remove = tuple(guest for guest in guests if guest.name not in keep and guest.name not in held)
    kept = tuple(guest.name for guest in guests if guest.name in keep)
    skipped = tuple(held[guest.name] for guest in guests if guest.name not in keep and guest.name in held)
    return PrunePlan(remove, kept, skipped)
