# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Managed text files: read, compare, text diff, atomic write with optional backup."""

from __future__ import annotations

import os
import tempfile


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def text_diff(path, before, after):
    """An Ansible diff entry for a text file (None content = the file is absent)."""
    return {
        'before_header': path if before is not None else '%s (absent)' % path,
        'after_header': path if after is not None else '%s (absent)' % path,
        'before': before or '',
        'after': after or '',
    }


def write_atomic(module, path, content, backup=False, mode=0o644):
    """Write `content` to `path` through a temporary file in the same folder.

    Returns the backup file's path or None.  `content` None removes the file.
    """
    backup_file = None
    if backup and os.path.exists(path):
        backup_file = module.backup_local(path)
    if content is None:
        if os.path.exists(path):
            os.unlink(path)
        return backup_file
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    handle, temp_path = tempfile.mkstemp(prefix='.tuntap-', dir=directory)
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as temp:
            temp.write(content)
        os.chmod(temp_path, mode)
        module.atomic_move(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
    return backup_file
