#!/usr/bin/env bash
# The main command of tuntap.qemu: bring up the namespace lab, converge it with the
# collection, print the connectivity matrix, tear it down.
#
#   lab/run.sh [demo|up|matrix|down] [--keep] [--prefix P]
#
# Works from a Debian 12 root shell with only git and python3: the same preparation as the
# test command (Debian packages, a virtual environment with ansible-core) runs first.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TUNTAP_VENV:-/var/cache/tuntap-qemu/venv}
TUNTAP_VENV=$VENV bash "$REPO_ROOT/tests/run.sh" prepare >/dev/null
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" "$REPO_ROOT/lab/tuntap_lab.py" "$@"
