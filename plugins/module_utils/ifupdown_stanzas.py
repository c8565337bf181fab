# Copyright: tuntap.qemu contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The admin's ifupdown stanzas of the uplink: taken out of the way into a marked block, and
restored byte for byte (pure text logic; the module reads and writes the files).

When the bridged_lan topology makes the uplink (eth0) a port of the bridge (br0), the admin's own
lines for eth0 in /etc/network/interfaces would fight with the `iface eth0 inet manual` of our
interfaces.d file at boot. take() turns every line that configures the uplink into comments of
a block that says why; restore() gives the original bytes back.

    # BEGIN tuntap.qemu uplink eth0: eth0 is a port of br0 (bridged_lan); ...
    #ttq:auto lo eth0
    auto lo
    #ttq:iface eth0 inet static
    #ttq:    address 10.44.0.50/24
    # END tuntap.qemu uplink eth0

`#ttq:` lines are the original lines; other lines inside a block are active rewrites (`auto lo`:
the `auto lo eth0` line without the uplink) and are dropped by restore(). An END line without a
newline at the end of the file means the original's last line had none.

What configures the uplink (and is taken):
  - `auto` / `allow-<class>` lines that name it (rewritten without it when they name others);
  - `no-auto-down` / `no-scripts` lines that name it (the same way);
  - `iface <uplink> <family> <method>` stanzas, every family, with their option lines and the
    comments between them (not the comments and blank lines after the last option);
  - alias stanzas `iface <uplink>:<n> ...` and the auto/allow- names of the aliases: an alias
    puts its addresses on the uplink itself, which as a bridge port must have none. Their
    addresses are not carried (a warning says so).
What stays: VLANs on the uplink (`iface eth0.10`, another interface; a warning says that it
sits on a bridge port now), `mapping` stanzas (a warning), and `rename` lines: they give the
uplink its name, which the bridge port needs at boot.

Lines are parsed as interfaces(5) does: `#` as the first non-blank character is a comment, a
backslash at the end continues a line, a line whose first word is not a keyword is an option
of the iface or mapping stanza above it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing

BLOCK_TAG = 'tuntap.qemu uplink'
ORIGINAL_PREFIX = '#ttq:'
BLOCK_BEGIN = '# BEGIN %s ' % BLOCK_TAG
DEFAULT_MANAGED_FILE = '/etc/network/interfaces.d/tuntap-qemu'
DEFAULT_BASE_DIR = '/etc/network'

KEYWORDS = frozenset(('iface', 'mapping', 'auto', 'source', 'source-directory', 'rename',
                      'no-auto-down', 'no-scripts'))
STANZA_KEYWORDS = frozenset(('iface', 'mapping'))
NAME_LIST_KEYWORDS = ('auto', 'no-auto-down', 'no-scripts')  # and allow-<class>
# The plan owns the bridge's addresses and routes: these options are not carried.
ADDRESS_OPTIONS = frozenset(('address', 'netmask', 'broadcast', 'gateway', 'network',
                             'pointopoint', 'hwaddress'))
# L2 options that stay on the uplink as a bridge port (mtu goes to both).
PORT_OPTIONS = frozenset(('mtu', 'hwaddress'))
COMMAND_OPTIONS = frozenset(('pre-up', 'up', 'post-up', 'pre-down', 'down', 'post-down'))
# Options of another kind of interface, meaningless on a bridge.
FOREIGN_OPTION_PREFIXES = ('bridge-', 'bridge_', 'bond-', 'bond_', 'vlan-', 'vlan_', 'wpa-',
                           'wireless-', 'ovs_')
SOURCE_DIRECTORY_NAME = re.compile(r'^[a-zA-Z0-9_-]+$')


class StanzaError(ValueError):
    """The text cannot be handled safely (a damaged block); nothing should be written."""


@dataclasses.dataclass(frozen=True)
class Line:
    """One logical line: its physical lines (with their newlines), its words and its kind."""

    physical: typing.Tuple[str, ...]
    words: typing.Tuple[str, ...]
    kind: str  # 'blank', 'comment', 'keyword', 'option'
    content: str = ''  # the physical lines joined, without continuations and outer blanks

    @property
    def text(self):
        return ''.join(self.physical)

    @property
    def keyword(self):
        return self.words[0] if self.kind == 'keyword' else None

    @property
    def indent(self):
        first = self.physical[0]
        return first[:len(first) - len(first.lstrip(' \t'))]


@dataclasses.dataclass(frozen=True)
class Stanza:
    """An iface stanza: its family, method and option lines [name, value]."""

    name: str
    family: str
    method: str
    options: typing.Tuple[typing.Tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Carry:
    """The admin's configuration of the uplink, to carry to the bridge (see to_dict())."""

    uplink: str
    method: typing.Optional[str] = None
    allow: typing.Tuple[str, ...] = ()
    bridge_options: typing.Tuple[typing.Tuple[str, str], ...] = ()
    port_options: typing.Tuple[typing.Tuple[str, str], ...] = ()
    inet6: typing.Tuple[Stanza, ...] = ()
    warnings: typing.Tuple[str, ...] = ()

    def to_dict(self):
        return {
            'uplink': self.uplink,
            'method': self.method,
            'allow': list(self.allow),
            'bridge_options': [list(option) for option in self.bridge_options],
            'port_options': [list(option) for option in self.port_options],
            'inet6': [{'method': stanza.method, 'options': [list(option) for option in stanza.options]}
                      for stanza in self.inet6],
            'warnings': list(self.warnings),
        }


@dataclasses.dataclass(frozen=True)
class Result:
    """The text after take() or restore(), what it carries, and whether it differs."""

    text: str
    carry: Carry
    changed: bool


# ------------------------------------------------------------------ parsing

def physical_lines(text):
    """The lines of `text` with their newlines; the last one may have none."""
    return re.findall(r'[^\n]*\n|[^\n]+$', text)


def _continued(line):
    return line.rstrip('\r\n').endswith('\\')


def parse_lines(text):
    """The logical lines of an interfaces(5) text, every byte in exactly one of them."""
    lines = []
    pending = []
    for physical in physical_lines(text):
        pending.append(physical)
        if _continued(physical):
            continue
        lines.append(_logical(tuple(pending)))
        pending = []
    if pending:
        lines.append(_logical(tuple(pending)))
    return lines


def _logical(physical):
    joined = ''.join(part.rstrip('\r\n')[:-1] if _continued(part) else part.rstrip('\r\n')
                     for part in physical)
    stripped = joined.strip()
    if not stripped:
        return Line(physical, (), 'blank')
    if stripped.startswith('#'):
        return Line(physical, (), 'comment', stripped)
    words = tuple(stripped.split())
    kind = 'keyword' if words[0] in KEYWORDS or words[0].startswith('allow-') else 'option'
    return Line(physical, words, kind, stripped)


def option_pair(line):
    """(name, value) of an option line; the value keeps its inner spacing."""
    parts = re.split(r'\s+', line.content, maxsplit=1)
    return (parts[0], parts[1] if len(parts) > 1 else '')


def _names_interface(words, uplink):
    """An auto/allow-/no-* line's names that are the uplink or one of its aliases."""
    return [name for name in words[1:] if name == uplink or name.startswith(uplink + ':')]


def _iface_target(line, uplink):
    """'uplink' or 'alias' when an iface line configures the uplink, else None."""
    if line.keyword != 'iface' or len(line.words) < 2:
        return None
    name = line.words[1]
    if name == uplink:
        return 'uplink'
    if name.startswith(uplink + ':'):
        return 'alias'
    return None


def _is_name_list(line):
    return line.keyword in NAME_LIST_KEYWORDS or (line.keyword or '').startswith('allow-')


def affected_spans(lines, uplink):
    """(start, end) index ranges of the logical lines that configure the uplink, merged where
    only comments and blank lines lie between them (none of another uplink's block);
    trailing comments stay outside."""
    marks = [False] * len(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_name_list(line) and _names_interface(line.words, uplink):
            marks[index] = True
        elif _iface_target(line, uplink):
            marks[index] = True
            last = index
            probe = index + 1
            while probe < len(lines) and lines[probe].kind != 'keyword':
                if lines[probe].kind == 'option':
                    last = probe
                probe += 1
            for inside in range(index, last + 1):
                marks[inside] = True
            index = last
        index += 1
    foreign = other_blocks(lines, uplink)
    spans = []
    for index, marked in enumerate(marks):
        if not marked:
            continue
        if spans and all(lines[between].kind in ('blank', 'comment') and between not in foreign
                         for between in range(spans[-1][1], index)):
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans


def other_blocks(lines, uplink):
    """The indexes of the lines that belong to the blocks of other uplinks."""
    inside = set()
    current = None
    for index, line in enumerate(lines):
        first = line.physical[0]
        if current is None and first.startswith(BLOCK_BEGIN) and not _is_begin(first, uplink):
            current = first[len(BLOCK_BEGIN):].split(':', 1)[0]
        if current is not None:
            inside.add(index)
            if first.rstrip('\r\n') == end_line(current):
                current = None
    return inside


def stanzas(lines):
    """The Stanza of every iface line; option lines up to the next keyword line."""
    found = []
    for index, line in enumerate(lines):
        if line.keyword != 'iface':
            continue
        words = line.words + ('', '', '')
        options = []
        for following in lines[index + 1:]:
            if following.kind == 'keyword':
                break
            if following.kind == 'option':
                options.append(option_pair(following))
        found.append(Stanza(words[1], words[2], words[3], tuple(options)))
    return found


# ------------------------------------------------------------------ blocks

def begin_line(uplink, bridge, managed_file):
    return ('# BEGIN %s %s: %s is a port of %s (bridged_lan); its configuration moved to %s. '
            'The original lines follow (%s prefix) and come back when the host leaves bridged_lan.\n'
            % (BLOCK_TAG, uplink, uplink, bridge or 'the bridge', managed_file, ORIGINAL_PREFIX))


def end_line(uplink):
    return '# END %s %s' % (BLOCK_TAG, uplink)


def _is_begin(physical, uplink):
    return physical.startswith('# BEGIN %s %s:' % (BLOCK_TAG, uplink))


def _is_end(physical, uplink):
    return physical.rstrip('\r\n') == end_line(uplink)


def restore(text, uplink):
    """Every block of `uplink` back to its original lines: Result(text, carry, changed); the
    carry is what came back (nothing when there was no block)."""
    restored = _restored_text(text, uplink)
    changed = restored != text
    return Result(restored, carry_of(restored, uplink) if changed else Carry(uplink), changed)


def _restored_text(text, uplink):
    out = []
    block = None
    for physical in physical_lines(text):
        if block is None:
            if _is_begin(physical, uplink):
                block = []
            elif _is_end(physical, uplink):
                raise StanzaError('%r without its BEGIN line: restore the lines of %s by hand'
                                  % (end_line(uplink), uplink))
            else:
                out.append(physical)
            continue
        if _is_end(physical, uplink):
            if not physical.endswith('\n') and block and block[-1].endswith('\n'):
                block[-1] = block[-1][:-1]  # the original had no newline at its end
            out.extend(block)
            block = None
        elif _is_begin(physical, uplink):
            raise StanzaError('a block of %s starts inside another one: restore its lines by hand'
                              % uplink)
        elif physical.startswith(ORIGINAL_PREFIX):
            block.append(physical[len(ORIGINAL_PREFIX):])
        # other lines in a block are our active rewrites: dropped
    if block is not None:
        raise StanzaError('the block of %s has no %r line: restore its lines by hand'
                          % (uplink, end_line(uplink)))
    return ''.join(out)


def take(text, uplink, bridge, managed_file=DEFAULT_MANAGED_FILE):
    """The text with every line that configures `uplink` moved into a marked block.

    Blocks already there are restored first and taken again, so taking a taken text changes
    nothing, and lines the admin added since are taken too."""
    original = _restored_text(text, uplink)
    lines = parse_lines(original)
    spans = affected_spans(lines, uplink)
    foreign = other_blocks(lines, uplink)
    for start, end in spans:
        for index in range(start, end):
            if index in foreign:
                raise StanzaError('the line %r configures %s but is inside the block of another uplink; '
                                  'restore that one first' % (lines[index].content, uplink))
    out = []
    position = 0
    for start, end in spans:
        out.extend(line.text for line in lines[position:start])
        out.append(_block(lines[start:end], uplink, bridge, managed_file))
        position = end
    out.extend(line.text for line in lines[position:])
    taken = ''.join(out)
    return Result(taken, carry_of(original, uplink), taken != text)


def _block(lines, uplink, bridge, managed_file):
    parts = []
    for line in lines:
        parts.extend(ORIGINAL_PREFIX + physical for physical in line.physical)
        if _is_name_list(line):
            named = _names_interface(line.words, uplink)
            others = [name for name in line.words[1:] if name not in named]
            if others:
                parts.append('%s%s %s' % (line.indent, line.words[0], ' '.join(others)))
    body = ''.join(part if part.endswith('\n') else part + '\n' for part in parts)
    # No newline after END: the original's last line had none (restore() strips it again).
    ending = '\n' if lines[-1].physical[-1].endswith('\n') else ''
    return begin_line(uplink, bridge, managed_file) + body + end_line(uplink) + ending


# ------------------------------------------------------------------ carry

def _names_word(text, name):
    return re.search(r'(?<![\w.:-])%s(?![\w.:-])' % re.escape(name), text) is not None


def carry_of(text, uplink):
    """The Carry of the lines that configure `uplink` in an (untaken) text."""
    lines = parse_lines(text)
    allow = []
    warnings = []
    for line in lines:
        if not _is_name_list(line):
            continue
        named = _names_interface(line.words, uplink)
        if not named:
            continue
        keyword = line.words[0]
        if keyword in ('no-auto-down', 'no-scripts'):
            warnings.append('%s %s is not carried to the bridge; add it to the bridge by hand if '
                            'it is still wanted' % (keyword, ' '.join(named)))
        elif uplink in named and keyword not in allow:
            allow.append(keyword)
    method = None
    bridge_options = []
    port_options = []
    inet6 = []
    inet_count = 0
    for stanza in stanzas(lines):
        if stanza.name.startswith(uplink + '.'):
            warnings.append('iface %s (a VLAN on %s) is not moved: %s is a bridge port now, so the '
                            'VLAN belongs on the bridge' % (stanza.name, uplink, uplink))
            continue
        if stanza.name.startswith(uplink + ':'):
            warnings.append('the alias stanza iface %s %s %s was moved out and is not carried; '
                            'give its addresses to the bridge' % (stanza.name, stanza.family, stanza.method))
            continue
        if stanza.name != uplink:
            for name, value in stanza.options:
                if name.startswith('vlan') and value == uplink:
                    warnings.append('iface %s has %s %s: %s is a bridge port now, so the VLAN '
                                    'belongs on the bridge' % (stanza.name, name, value, uplink))
            continue
        if stanza.family == 'inet6':
            inet6.append(stanza)
            warnings.extend(_command_warnings(stanza, uplink))
            continue
        if stanza.family != 'inet':
            warnings.append('iface %s %s %s was moved out and is not carried (only inet and inet6 '
                            'are)' % (stanza.name, stanza.family, stanza.method))
            continue
        inet_count += 1
        if method is None:
            method = stanza.method
        elif stanza.method != method:
            warnings.append('iface %s inet %s: a second inet stanza with another method; the '
                            'bridge uses %s' % (uplink, stanza.method, method))
        warnings.extend(_command_warnings(stanza, uplink))
        for name, value in stanza.options:
            if name in PORT_OPTIONS:
                port_options.append((name, value))
            if name.startswith(FOREIGN_OPTION_PREFIXES):
                warnings.append('option %s %s of iface %s inet cannot be carried to a bridge'
                                % (name, value, uplink))
            elif name not in ADDRESS_OPTIONS:
                bridge_options.append((name, value))
    for line in lines:
        if line.keyword == 'mapping' and any(_names_word(word, uplink) for word in line.words[1:]):
            warnings.append('mapping %s is not moved: its logical interfaces may still configure %s'
                            % (' '.join(line.words[1:]), uplink))
    if inet_count > 1:
        warnings.append('%d inet stanzas for %s: their options are carried together' % (inet_count, uplink))
    return Carry(uplink, method, tuple(allow), tuple(bridge_options), tuple(port_options),
                 tuple(inet6), tuple(warnings))


def _command_warnings(stanza, uplink):
    return ['the command "%s %s" of iface %s %s names %s; on the bridge it runs as written, '
            'check it' % (name, value, uplink, stanza.family, uplink)
            for name, value in stanza.options
            if name in COMMAND_OPTIONS and _names_word(value, uplink)]


# ------------------------------------------------------------------ other files

def configures(text, uplink):
    """Whether an interfaces(5) text has lines that configure `uplink` (outside our blocks)."""
    return bool(affected_spans(parse_lines(text), uplink))


def find_elsewhere(texts_by_path, uplink):
    """The paths, in the given order, whose text configures `uplink`."""
    return [path for path, text in texts_by_path.items() if text is not None and configures(text, uplink)]


def sourced_paths(text, base_dir=DEFAULT_BASE_DIR, glob_fn=None, listdir_fn=None):
    """The files that the `source` and `source-directory` lines of `text` include, in order.

    `source` takes shell globs (glob_fn(pattern) -> paths), `source-directory` the names in a
    folder (listdir_fn(path) -> names) that match ^[a-zA-Z0-9_-]+$, both sorted; relative paths
    are relative to base_dir."""
    found = []
    for line in parse_lines(text):
        if line.keyword not in ('source', 'source-directory'):
            continue
        for word in line.words[1:]:
            path = os.path.join(base_dir, word)
            if line.keyword == 'source':
                candidates = sorted(glob_fn(path)) if glob_fn else [path]
            else:
                names = listdir_fn(path) if listdir_fn else []
                candidates = [os.path.join(path, name) for name in sorted(names)
                              if SOURCE_DIRECTORY_NAME.match(name)]
            for candidate in candidates:
                if candidate not in found:
                    found.append(candidate)
    return found
