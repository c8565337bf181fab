#!/usr/bin/env bash
# A module whose library is missing must fail with a message that names the Debian package
# and the PyPI package, and change nothing. The target Pythons are virtual environments
# without system site packages: one without pyroute2 and netaddr, one with netaddr only.
set -eux -o pipefail

source ../setup_netns/netns.sh
netns_init missing_libraries

bare=$NETNS_WORK_DIR/bare
netaddr_only=$NETNS_WORK_DIR/netaddr-only
python=$(command -v python3)
"$python" -m venv --without-pip "$bare"
"$python" -m venv --without-pip "$netaddr_only"
# netaddr is pure Python: give the second environment the copy the controller's Python has.
netaddr_dir=$("$NETNS_ANSIBLE_PYTHON" -c 'import netaddr, os; print(os.path.dirname(netaddr.__file__))')
site=$("$netaddr_only/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -a "$netaddr_dir" "$site/"

TUNTAP_TARGET_PYTHON=$bare/bin/python netns_run_playbook missing_libraries.yml -e missing=netaddr "$@"
TUNTAP_TARGET_PYTHON=$netaddr_only/bin/python netns_run_playbook missing_libraries.yml -e missing=pyroute2 "$@"
