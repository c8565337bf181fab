# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only views of the nftables ruleset of the namespace it runs in, for the NAT tests.

    ruleset.py others              every table except inet tuntap_qemu, as `nft -s list table`
                                   prints it (stateless: no counter values), in listing order
    ruleset.py counters            {comment: packets} of the rules of inet tuntap_qemu (JSON)
    ruleset.py ours [SAVE...]      where our comments are (JSON), from `nft -j list ruleset`:
                                   {"table": {chain: [comments of inet tuntap_qemu, in
                                   order; '' for a rule without one]}, "elsewhere":
                                   ["family table chain | comment" of other tables' rules
                                   with a comment of ours]}, and for each iptables-save
                                   program SAVE, "SAVE": ["table chain | comment"] of ours
    ruleset.py fingerprint FILE... what a converge may change: `nft -s list ruleset`, the
                                   legacy iptables tables (without counters) and the files
                                   (their content, or "absent")
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

OURS = ('inet', 'tuntap_qemu')
PREFIX = 'tuntap.qemu '
SAVED_COMMENT = re.compile(r'^-A (\S+) .*--comment "([^"]*)"')
ENV = dict(os.environ, LC_ALL='C')


def nft(*args):
    return subprocess.run(['nft'] + list(args), check=True, env=ENV,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout


def others():
    tables = json.loads(nft('-j', 'list', 'tables'))['nftables']
    for item in tables:
        table = item.get('table')
        if table and (table['family'], table['name']) != OURS:
            sys.stdout.write(nft('-s', 'list', 'table', table['family'], table['name']))


def counters():
    found = {}
    result = subprocess.run(['nft', '-j', 'list', 'table'] + list(OURS), check=False, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    if result.returncode == 0:
        for item in json.loads(result.stdout)['nftables']:
            rule = item.get('rule')
            if not rule:
                continue
            for expr in rule['expr']:
                if 'counter' in expr:
                    found[rule.get('comment', '')] = expr['counter']['packets']
    json.dump(found, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')


def ours(saves):
    found = {'table': {}, 'elsewhere': []}
    for item in json.loads(nft('-j', 'list', 'ruleset'))['nftables']:
        rule = item.get('rule')
        if not rule:
            continue
        comment = rule.get('comment', '')
        if (rule['family'], rule['table']) == OURS:
            found['table'].setdefault(rule['chain'], []).append(comment)
        elif comment.startswith(PREFIX):
            found['elsewhere'].append('%s %s %s | %s' % (rule['family'], rule['table'],
                                                         rule['chain'], comment))
    for save in saves:
        found[save] = []
        out = subprocess.run([save], check=True, env=ENV, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
        table = None
        for line in out.splitlines():
            if line.startswith('*'):
                table = line[1:]
            match = SAVED_COMMENT.match(line)
            if match and match.group(2).startswith(PREFIX):
                found[save].append('%s %s | %s' % (table, match.group(1), match.group(2)))
    json.dump(found, sys.stdout, sort_keys=True)
    sys.stdout.write('\n')


def fingerprint(paths):
    sys.stdout.write('## nft -s list ruleset\n' + nft('-s', 'list', 'ruleset'))
    for save in ('iptables-legacy-save', 'ip6tables-legacy-save'):
        if shutil.which(save) is None:
            continue
        out = subprocess.run([save], check=True, env=ENV, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
        out = re.sub(r'^# (Generated|Completed) .*\n', '', out, flags=re.MULTILINE)
        sys.stdout.write('## %s\n' % save + re.sub(r' \[[0-9]+:[0-9]+\]', '', out))
    for path in paths:
        try:
            with open(path) as handle:
                text = handle.read()
            mode = oct(os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            text, mode = 'absent\n', '-'
        sys.stdout.write('## %s %s\n%s' % (path, mode, text))


def main(argv):
    if argv == ['others']:
        others()
    elif argv == ['counters']:
        counters()
    elif argv[:1] == ['ours']:
        ours(argv[1:])
    elif argv[:1] == ['fingerprint']:
        fingerprint(argv[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
