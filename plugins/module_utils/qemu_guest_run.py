# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge of the qemu_guest module: observe -> plan -> validate -> act."""

from __future__ import annotations

import os
import shutil
import time

from ansible_collections.tuntap.qemu.plugins.module_utils import guest_plan, link_module, links, qemu


def _fail(module, errors, **extra):
    module.fail_json(msg='; '.join(errors), errors=errors, **extra)


def _resolve_binary(module, guest, errors):
    binary = guest['binary']
    found = binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else module.get_bin_path(binary)
    if not found:
        errors.append('binary: %s not found (Debian package qemu-system-x86)' % binary)
        return
    guest['binary'] = found


def _wait_for_qmp(files, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return qemu.query_status(files)
        except qemu.QemuError as exc:
            last = exc
            time.sleep(0.1)
    raise qemu.QemuError('the guest started but its QMP socket does not answer: %s' % last)


def _read_carriers(ipr, snapshot, guest):
    """Add each of the guest's taps' current carrier to its snapshot record.

    The carrier tells whether a process holds the tap open. IFLA_OPERSTATE follows it only
    through the kernel's linkwatch, up to a second later, so a tap that tap_device (or a guest
    stopped a moment ago) has just let go would still look held by its operstate.
    """
    for nic in guest['nics']:
        link = snapshot.get(nic['tap'])
        if link is None:
            continue
        try:
            messages = ipr.get_links(link['ifindex'])
        except links.NetlinkError:
            continue  # gone since the dump: tap_errors() still sees it, nothing is started
        if messages:
            carrier = messages[0].get_attr('IFLA_CARRIER')
            if carrier is not None:
                link['carrier'] = bool(carrier)


def converge(module):
    """Converge one guest; returns the module result."""
    link_module.require_libraries(module)
    params = module.params
    guest, errors = guest_plan.guest_spec(params)
    files = guest_plan.runtime_paths(params)
    run_as, error = guest_plan.resolve_run_as('run_as', params['run_as'])
    if error:
        errors.append(error)
    if params['stop_timeout'] < 0:
        errors.append('stop_timeout: %r must not be negative' % params['stop_timeout'])
    if params['state'] == 'running':
        _resolve_binary(module, guest, errors)
    if errors:
        _fail(module, errors)
    try:
        accel, reason = qemu.choose_accel(params['accel'])
    except qemu.QemuError as exc:
        _fail(module, [str(exc)])
    argv = qemu.build_argv(guest, accel, files)
    observed = qemu.observe(files, guest['name'])
    action = guest_plan.plan_action(params['state'], observed, argv, params['restart_on_change'])

    if action in ('start', 'restart'):
        ipr = links.open_netlink()
        try:
            snapshot = links.read_snapshot()
            _read_carriers(ipr, snapshot, guest)
        finally:
            ipr.close()
        own_pid = observed['pid'] if action == 'restart' else None
        errors = guest_plan.tap_errors(snapshot, guest, run_as, own_pid)
        if errors:
            _fail(module, errors)
    if action == 'remove' and observed['state'] == 'stopped' and not os.path.isdir(files['runtime_dir']):
        action = None

    result = {
        'changed': action is not None,
        'action': action,
        'argv': argv,
        'cmdline': qemu.command_line(argv),
        'accel': {'name': accel, 'reason': reason},
        'macs': [nic['mac'] for nic in guest['nics']],
        'qmp_socket': files['qmp_socket'],
        'serial_log': files['serial_log'],
        'pidfile': files['pidfile'],
        'pid': observed['pid'],
        'state': 'running' if observed['state'] != 'stopped' else 'stopped',
    }
    if module._diff:
        after_state = {'start': 'running', 'restart': 'running', 'stop': 'stopped',
                       'remove': 'absent'}.get(action, result['state'])
        result['diff'] = {
            'before': {'state': observed['state'], 'argv': observed['argv']},
            'after': {'state': after_state, 'argv': argv if after_state == 'running' else observed['argv']},
        }
    if action is None or module.check_mode:
        if action is not None:
            result['state'] = {'stop': 'stopped', 'remove': 'absent'}.get(action, 'running')
        return result

    try:
        if action in ('stop', 'restart', 'remove'):
            result['stopped_by'] = qemu.stop(files, guest['name'], params['stop_timeout'])
            result['pid'] = None
            result['state'] = 'stopped'
        if action == 'remove':
            shutil.rmtree(files['runtime_dir'], ignore_errors=True)
            result['state'] = 'absent'
        if action in ('start', 'restart'):
            qemu.prepare_runtime_dir(files, *(run_as[:2] if run_as else (None, None)))
            result['pid'] = qemu.start(argv, files, run_as)
            status = _wait_for_qmp(files)
            result['state'] = 'running'
            result['status'] = status.get('status')
    except qemu.QemuError as exc:
        # No half-started guest: whatever got started for this name goes again.
        qemu.stop(files, guest['name'], timeout=0)
        module.fail_json(msg=str(exc), changed=True, argv=argv, cmdline=result['cmdline'],
                         serial_log=files['serial_log'])
    return result
