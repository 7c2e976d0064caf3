"""Reading a shell command for what it plainly writes, and for attempts to bypass git hooks.

Not a shell: it splits on the usual separators and recognises the common ways of writing a file
(redirections, tee, sed -i, cp, mv, rm, touch, truncate, dd, ln, install, mkdir, interpreters with
an open(..., 'w')-like call). Anything it cannot read is left to the other layers; CI is the
backstop. Standard library only: it runs inside the PreToolUse hook.
"""

from __future__ import annotations

import re
import shlex

_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "|&"}
_REDIRECT = re.compile(r"^(?:\d*|&)>{1,2}\|?$")  # >, >>, 2>, &>, >|
_WRITERS_LAST = {"cp", "mv", "install", "ln"}  # the last operand is written
_WRITERS_ALL = {"touch", "truncate", "mkdir", "tee", "rm", "rmdir", "unlink", "shred"}
_DELETERS = {"rm", "rmdir", "unlink", "shred"}
_INTERPRETERS = {"python", "python3", "node", "ruby", "perl", "php"}
_OPEN_WRITE = re.compile(
    r"""(?:open|Path|writeFileSync|appendFileSync|createWriteStream|File\.write|File\.open)\s*\(\s*['"]([^'"]+)['"]"""
    r"""(?:\s*,\s*['"]([^'"]*)['"])?"""
)


class Reading:
    """What a command writes (operation, path) and why it bypasses hooks, if it does."""

    __slots__ = ("bypass", "writes")

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.bypass: list[str] = []


def read_command(command: str) -> Reading:
    """Analyse `command`; never raises (an unparsable command yields what could be read)."""
    reading = Reading()
    if re.search(r"core\.hookspath", command, re.IGNORECASE):
        reading.bypass.append("changes or overrides core.hooksPath")
    for words in _commands(command):
        _read_one(words, reading)
    return reading


def _commands(command: str) -> list[list[str]]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to plain splitting
        tokens = command.split()
    out: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def _read_one(words: list[str], reading: Reading) -> None:
    # Redirections anywhere in the command: `> file`, `>> file`, `2> file`, `&> file`.
    i = 0
    plain: list[str] = []
    while i < len(words):
        word = words[i]
        if _REDIRECT.match(word) and i + 1 < len(words):
            target = words[i + 1]
            if not target.startswith("&") and target != "/dev/null":
                reading.writes.append(("write", target))
            i += 2
            continue
        if word in ("<", "<<", "<<<") and i + 1 < len(words):
            i += 2
            continue
        plain.append(word)
        i += 1
    while plain and ("=" in plain[0] and not plain[0].startswith("-")):
        plain = plain[1:]  # leading VAR=value assignments
    while plain and plain[0] in ("sudo", "env", "command", "exec", "nohup", "time", "xargs"):
        plain = plain[1:]
    if not plain:
        return
    name = plain[0].rsplit("/", 1)[-1]
    args = plain[1:]
    operands = [a for a in args if not a.startswith("-")]
    if name == "git":
        _read_git(args, reading)
    elif name in _WRITERS_ALL:
        operation = "delete" if name in _DELETERS else "mkdir" if name == "mkdir" else "write"
        reading.writes += [(operation, path) for path in operands]
    elif name in _WRITERS_LAST and len(operands) >= 2:
        reading.writes.append(("write", operands[-1]))
        if name == "mv":
            reading.writes += [("delete", path) for path in operands[:-1]]
    elif name == "sed" and any(
        a == "-i" or (a.startswith("-i") and not a.startswith("--")) or a.startswith("--in-place") for a in args
    ):
        files = [a for a in operands[1:]] if not any(a in ("-e", "-f") for a in args) else operands
        reading.writes += [("write", path) for path in files]
    elif name == "dd":
        reading.writes += [("write", a[3:]) for a in args if a.startswith("of=")]
    elif name.rstrip("0123456789.") in _INTERPRETERS:
        for path, mode in _OPEN_WRITE.findall(" ".join(args)):
            if not mode or any(flag in mode for flag in "wax+"):
                reading.writes.append(("write", path))


_GIT_VALUED = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env"}
_CONFIG_READS = {"--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list", "-l", "get", "list"}


def _read_git(args: list[str], reading: Reading) -> None:
    rest = list(args)
    while rest and rest[0].startswith("-"):  # global options before the verb, some with a value
        rest = rest[2:] if rest[0] in _GIT_VALUED else rest[1:]
    verb = rest[0] if rest else ""
    if verb == "config":
        operands = [a for a in rest[1:] if not a.startswith("-")]
        if not any(a in _CONFIG_READS for a in rest[1:]) and (len(operands) >= 2 or len(rest) > len(operands) + 1):
            reading.bypass.append("git config changes settings that can run code on a human's next git command")
    if "--no-verify" in args:
        reading.bypass.append(f"git {verb} --no-verify skips the governance hooks")
    if verb == "commit" and any(a.startswith("-") and not a.startswith("--") and "n" in a[1:] for a in args):
        reading.bypass.append("git commit -n skips the governance hooks")
    if verb in ("commit-tree", "update-ref", "replace"):
        reading.bypass.append(f"git {verb} writes history without the governance hooks")
