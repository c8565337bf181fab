"""Print the interface of every dhclient whose pid file is in the folder argv[1], one a line,
sorted: what bridge_dhcp.yml expects to run (read from /proc, like dhcp_client.find_clients)."""

import os
import sys

folder = sys.argv[1].rstrip('/') + '/'
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit():
        continue
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as handle:
            argv = [part.decode('utf-8', 'surrogateescape') for part in handle.read().split(b'\0')[:-1]]
    except OSError:
        continue
    if len(argv) > 2 and os.path.basename(argv[0]) == 'dhclient' and '-pf' in argv:
        pidfile = argv[argv.index('-pf') + 1]
        if pidfile.startswith(folder):
            found.append(argv[-1])
print('\n'.join(sorted(found)))
