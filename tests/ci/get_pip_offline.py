# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write an offline stand-in for the get-pip.py script that ansible-test bootstraps with.

ansible-test creates every sanity-test virtual environment without pip and then runs
``~/.ansible/test/cache/get_pip_<X_Y>.py`` (see ansible_test/_util/target/setup/requirements.py,
``bootstrap()``), downloading it first from a host that only Ansible's CI can count on.
This script downloads the pip wheel of the version that the installed ansible-test pins
(from the package index, through pip) and writes a small script in its place that does
what the real get-pip.py does: ``pip install --upgrade --force-reinstall <arguments>``,
with pip imported from that wheel.

Run it with the Python of the environment that holds ansible-test::

    python tests/ci/get_pip_offline.py [--pip-version 24.2] [--cache-dir ~/.ansible/test/cache]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import types

MARKER = '# tuntap.qemu offline get-pip stand-in'
WHEEL_FOLDER = 'get_pip_wheels'

STAND_IN_TEMPLATE = '''\
{marker}
# Written by tests/ci/get_pip_offline.py of the tuntap.qemu collection for ansible-test.
# Like the real get-pip.py it runs "pip install --upgrade --force-reinstall <arguments>",
# with pip {pip_version} imported from the wheel below instead of from an embedded copy.
"""Install pip {pip_version} into the running Python from a locally cached wheel."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import zipfile

WHEEL = {wheel!r}


def requested_names(arguments):
    """Return the lower-case project names of the requirement arguments, or None if one is not a plain requirement."""
    names = []
    for argument in arguments:
        if argument.startswith('-'):
            continue
        match = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(==([A-Za-z0-9.+!-]+))?$', argument)
        if not match:
            return None
        names.append((match.group(1).lower().replace('_', '-'), match.group(3)))
    return names


def install_arguments(argv):
    """Return pip's command line, the way get-pip.py builds it."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--no-setuptools', action='store_true')
    parser.add_argument('--no-wheel', action='store_true')
    options, arguments = parser.parse_known_args(argv)

    requested = requested_names(arguments)
    if requested is None or not any(name == 'pip' for name, dummy in requested):
        arguments.append('pip')
    for name, refused in (('setuptools', options.no_setuptools), ('wheel', options.no_wheel)):
        if not refused and not os.environ.get('PIP_NO_' + name.upper()) and importlib.util.find_spec(name) is None:
            arguments.append(name)

    requested = requested_names(arguments)
    wheel_version = os.path.basename(WHEEL).split('-')[1]
    offline = requested is not None and all(name == 'pip' and version in (None, wheel_version) for name, version in requested)
    if offline:
        arguments = ['--no-index'] + arguments
    return ['install', '--upgrade', '--force-reinstall', '--find-links', os.path.dirname(WHEEL)] + arguments


def main():
    """Import pip from the wheel and let it install itself."""
    with tempfile.TemporaryDirectory(prefix='get-pip-') as unpacked:
        # Unpacked like get-pip.py does, so that pip's certificate bundle is a real file.
        with zipfile.ZipFile(WHEEL) as wheel:
            wheel.extractall(unpacked)
        sys.path.insert(0, unpacked)
        from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel
        return pip_main(install_arguments(sys.argv[1:]))


if __name__ == '__main__':
    sys.exit(main())
'''


def ansible_test_pip_version():
    """Return the pip version that the importable ansible-test bootstraps its virtual environments with."""
    from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel

    python = types.SimpleNamespace(version='%d.%d' % sys.version_info[:2])
    return get_venv_packages(python)['pip']


def stand_in_path(cache_dir, pip_version):
    """Return the path ansible-test looks for the bootstrap script of pip_version at."""
    return os.path.join(cache_dir, 'get_pip_%s.py' % pip_version.replace('.', '_'))


def cached_wheel(wheel_dir, pip_version):
    """Return the path of the cached pip wheel of pip_version, or None."""
    found = sorted(glob.glob(os.path.join(wheel_dir, 'pip-%s-*.whl' % pip_version)))
    return found[0] if found else None


def download_wheel(wheel_dir, pip_version):
    """Download the pip wheel of pip_version into wheel_dir through pip and return its path."""
    wheel = cached_wheel(wheel_dir, pip_version)
    if wheel:
        return wheel
    os.makedirs(wheel_dir, exist_ok=True)
    command = [sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps',
               '--only-binary=:all:', '--dest', wheel_dir, 'pip==%s' % pip_version]
    subprocess.run(command, check=True, env=dict(os.environ, LC_ALL='C'))
    wheel = cached_wheel(wheel_dir, pip_version)
    if not wheel:
        raise SystemExit('pip download left no pip-%s wheel in %s' % (pip_version, wheel_dir))
    return wheel


def write_atomically(path, text):
    """Write text to path through a temporary file in the same folder."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.' + os.path.basename(path))
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def ensure_stand_in(cache_dir, pip_version):
    """Make sure ansible-test finds a bootstrap script for pip_version; return a one-line report."""
    script = stand_in_path(cache_dir, pip_version)
    if os.path.exists(script):
        with open(script, encoding='utf-8') as stream:
            if not stream.readline().startswith(MARKER):
                return 'kept the get-pip script already cached at %s' % script

    wheel = download_wheel(os.path.join(cache_dir, WHEEL_FOLDER), pip_version)
    text = STAND_IN_TEMPLATE.format(marker=MARKER, pip_version=pip_version, wheel=wheel)
    if os.path.exists(script):
        with open(script, encoding='utf-8') as stream:
            if stream.read() == text:
                return 'offline get-pip stand-in for pip %s is up to date: %s' % (pip_version, script)
    write_atomically(script, text)
    return 'wrote offline get-pip stand-in for pip %s: %s (wheel %s)' % (pip_version, script, wheel)


def main():
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--pip-version', help='pip version to provide (default: the one the installed ansible-test pins)')
    parser.add_argument('--cache-dir', default=os.path.expanduser('~/.ansible/test/cache'),
                        help='ansible-test cache folder (default: %(default)s)')
    options = parser.parse_args()

    pip_version = options.pip_version or ansible_test_pip_version()
    os.makedirs(options.cache_dir, exist_ok=True)
    print(ensure_stand_in(options.cache_dir, pip_version))


if __name__ == '__main__':
    main()
