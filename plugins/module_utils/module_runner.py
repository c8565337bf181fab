# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner of every host module: parse -> read -> plan -> fail with every error (nothing
touched) -> apply unless check mode -> result.

A module hands its steps to run():

    class Steps(ModuleSteps):
        libraries = (NETADDR, PYROUTE2)         # checked up front, imported where used
        def parse(self, module): ...            # the request, or raise Refused(errors)
        def read(self, module, request): ...    # the state as it is
        def plan(self, module, request, state): ...   # .changed; raise Refused(errors)
        def apply(self, module, plan): ...      # raise ApplyFailed(message, **extra)
        def result(self, module, request, plan, applied): ...   # the module's return values

    module_runner.run(module, Steps())

The failure path is here and only here: Refused fails with every error at once
(msg joins them, `errors` lists them) before anything was touched; ApplyFailed fails with
changed=true after a partial change. A missing library fails first, naming its Debian
and PyPI packages, found with importlib.util.find_spec() - without importing it, so a
library needed only for writes (pyroute2) is imported on the write path alone.

read, plan, apply and result run under the host lock (host_lock.held(): one converge at a time
per host, that is per network namespace), in check mode too; parse runs before it, so a bad
request fails without waiting. A module whose steps touch no host state sets
`host_lock = False`. A lock that another module holds for the whole wait fails the module
before anything is read, naming the holder (`lock` in the result).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.tuntap.qemu.plugins.module_utils import host_lock, names

Library = collections.namedtuple('Library', 'module description')

NETADDR = Library('netaddr', names.NETADDR_LIBRARY)
PYROUTE2 = Library('pyroute2', 'pyroute2 (Debian package python3-pyroute2, PyPI package pyroute2)')


class Refused(Exception):
    """The request cannot be carried out; nothing was touched. Every error at once."""

    def __init__(self, errors, **extra):
        super().__init__('; '.join(errors))
        self.errors = list(errors)
        self.extra = extra


class ApplyFailed(Exception):
    """Applying failed part way: the module fails with changed=true and `extra`."""

    def __init__(self, message, **extra):
        super().__init__(message)
        self.extra = extra


class ModuleSteps:
    """The steps of one module; see the module docstring. read() and apply() do nothing."""

    libraries = ()
    # Every host module reads the state that the others change, uplink_info and check mode
    # included (a read in the middle of another converge sees half of its change).
    host_lock = True

    def parse(self, module):
        return module.params

    def read(self, module, request):
        return None

    def plan(self, module, request, state):
        raise NotImplementedError

    def apply(self, module, plan):
        pass

    def result(self, module, request, plan, applied):
        raise NotImplementedError


def missing_libraries(libraries):
    """The Library records of `libraries` that cannot be imported."""
    return [library for library in libraries if importlib.util.find_spec(library.module) is None]


def require_libraries(module, libraries):
    """Fail with the Debian and PyPI names of the first library that is missing."""
    for library in missing_libraries(libraries):
        module.fail_json(msg=missing_required_lib(library.description),
                         exception='ModuleNotFoundError: No module named %r' % library.module)


def refuse(errors, **extra):
    """Raise Refused when there are errors."""
    if errors:
        raise Refused(errors, **extra)


def converge(module, steps):
    """Run the steps; return the module result (module.fail_json() on failure)."""
    require_libraries(module, steps.libraries)
    applying = False
    try:
        request = steps.parse(module)
        with _host_lock(module, steps):  # released on every way out, fail_json's too
            state = steps.read(module, request)
            plan = steps.plan(module, request, state)
            applied = bool(plan.changed) and not module.check_mode
            if applied:
                applying = True
                steps.apply(module, plan)
                applying = False
            return steps.result(module, request, plan, applied)
    except host_lock.LockTimeout as exc:
        module.fail_json(msg=str(exc), errors=[str(exc)], lock=exc.facts())
    except host_lock.LockError as exc:
        module.fail_json(msg=str(exc), errors=[str(exc)])
    except Refused as exc:
        module.fail_json(msg=str(exc), errors=exc.errors, **exc.extra)
    except ApplyFailed as exc:
        module.fail_json(msg=str(exc), changed=True, **exc.extra)
    except OSError as exc:
        # A kernel or file error that no step turned into Refused/ApplyFailed (a netlink dump
        # still interrupted after its retries, say): a clean failure, not a traceback.
        if applying:
            module.fail_json(msg='%s (while applying the change; run the task again to converge)' % exc,
                             changed=True)
        module.fail_json(msg='reading the host state failed, nothing was changed: %s' % exc,
                         errors=[str(exc)])
    return None  # not reached: fail_json exits


def _host_lock(module, steps):
    if not steps.host_lock:
        return contextlib.nullcontext()
    return host_lock.held(getattr(module, '_name', None) or type(steps).__name__)


def run(module, steps):
    """converge(), then exit with its result."""
    module.exit_json(**converge(module, steps))
