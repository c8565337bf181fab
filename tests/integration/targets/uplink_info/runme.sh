#!/usr/bin/env bash
# uplink_info and the bridged LAN takeover check of bridge_port on the real kernel (issue 14):
# an inventory whose uplink address or gateway is not what the host holds is refused with
# links, addresses and routes unchanged. Every playbook runs in a fresh network namespace of
# its own, once per target Python (see ../setup_netns/netns.sh).
set -eux -o pipefail

# shellcheck source=../setup_netns/netns.sh source-path=SCRIPTDIR
source ../setup_netns/netns.sh
netns_init uplink_info
netns_run_playbooks uplink_info.yml -- "$@"
