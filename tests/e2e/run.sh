#!/usr/bin/env bash
# End-to-end tests: real QEMU guests (TCG) on taps inside network namespaces.
# tests/run.sh e2e runs this with its virtual environment first on PATH; by hand:
#   PATH=/var/cache/tuntap-qemu/venv/bin:$PATH bash tests/e2e/run.sh [PYTEST ARGS...]
# Needs root (namespaces, taps). The test guest is built from Debian packages and cached
# under TUNTAP_GUEST_CACHE (default /var/cache/tuntap-qemu/guest).
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
python=python
if ! command -v "$python" >/dev/null; then
    python=python3
fi
# -s shows the build and boot times of passing tests too; no cache folder in the work tree.
exec "$python" -m pytest -v -s -p no:cacheprovider tests/e2e "$@"
