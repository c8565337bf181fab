# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback for benchmarks/taps_vs_ip_batch.py: the time and outcome of every task.

Not part of the collection's content; the benchmark enables it with
ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_CALLBACKS_ENABLED.
"""

from __future__ import annotations

DOCUMENTATION = r'''
name: bench_task_times
type: aggregate
short_description: Write each task's duration, status and changed flag to a JSON file
description:
  - The duration of a task on a host runs from the moment the strategy hands it to a
    worker (v2_runner_on_start) until the controller has the result (v2_runner_on_ok and
    friends). It covers templating, building the module payload, starting it through the
    connection, the module's own run and returning the result.
  - The file is written when the play recap is due.
requirements:
  - The environment variable E(TTQ_BENCH_TASK_TIMES) names the output file.
'''

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_task_times'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._started = {}
        self._tasks = []

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.perf_counter()

    def _finished(self, result, status):
        end = time.perf_counter()
        host = result._host.get_name()
        task = result._task
        start = self._started.pop((host, task._uuid), None)
        self._tasks.append({
            'host': host,
            'task': task.get_name(),
            'action': task.action,
            'status': status,
            'changed': bool(result._result.get('changed', False)),
            'msg': result._result.get('msg'),
            'seconds': None if start is None else end - start,
        })

    def v2_runner_on_ok(self, result):
        self._finished(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._finished(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._finished(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._finished(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('TTQ_BENCH_TASK_TIMES')
        if path:
            with open(path, 'w') as output:
                json.dump(self._tasks, output, indent=1)
