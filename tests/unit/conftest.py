# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every unit test that runs module_runner.converge() takes the host lock in a folder of its
own, not in /run/tuntap-qemu (host_lock.DIRECTORY_VARIABLE; subprocesses inherit it)."""

from __future__ import annotations

import pytest

from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock


@pytest.fixture(autouse=True)
def _host_lock_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(host_lock.DIRECTORY_VARIABLE, str(tmp_path_factory.mktemp('host-lock')))
