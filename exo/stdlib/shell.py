"""Reading a shell command for what it plainly writes, and for attempts to bypass git hooks.

Not a shell: it splits on the usual separators and recognises the common ways of writing a file
(redirections, tee, sed -i, cp, mv, rm, touch, truncate, dd, ln, install, mkdir, tar, unzip,
patch, Codex's apply_patch, find -delete, git checkout/restore/apply, interpreters with an
open(..., 'w')-like call),
reads into `bash -c`/`sh -c`/`eval`, and follows `cd`/`pushd` and `git -C` for relative paths.
Anything it cannot read is left to the other layers — the sandbox is the boundary, CI the
backstop. Standard library only: it runs inside the PreToolUse hook.
"""

from __future__ import annotations

import re
import shlex

_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "|&"}
_REDIRECT = re.compile(r"^(?:\d*|&)(?:>{1,2}\|?|>&|<>)$")  # >, >>, 2>, &>, >|, >&, 1<>
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh"}
_DEPTH = 8  # nested `sh -c` levels read before giving up (and denying: see read_command)
_WRITERS_LAST = {"cp", "mv", "install", "ln"}  # the last operand is written
_WRITERS_ALL = {"touch", "truncate", "mkdir", "tee", "rm", "rmdir", "unlink", "shred"}
_DELETERS = {"rm", "rmdir", "unlink", "shred"}
_INTERPRETERS = {"python", "python3", "node", "ruby", "perl", "php"}
_OPEN_WRITE = re.compile(
    r"""(?:open|Path|writeFileSync|appendFileSync|createWriteStream|File\.write|File\.open)\s*\(\s*['"]([^'"]+)['"]"""
    r"""(?:\s*,\s*['"]([^'"]*)['"])?"""
)


class Reading:
    """What a command writes (operation, path) and why it bypasses hooks, if it does. Operations:
    `write`, `delete`, and `into` (it writes somewhere inside the directory `path`)."""

    __slots__ = ("bypass", "writes")

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.bypass: list[str] = []


def read_command(command: str) -> Reading:
    """Analyse `command`; never raises (an unparsable command yields what could be read)."""
    reading = Reading()
    _read(command, reading, "", 0)
    return reading


# husky and lefthook skip every hook when told to; lefthook and the pre-commit framework skip named ones.
_MANAGERS_OFF = re.compile(r"(?<![\w-])(?:HUSKY=[\"']?0|LEFTHOOK=[\"']?(?:0|false)|LEFTHOOK_EXCLUDE=|SKIP=\S*exo)")


_PATCH_FILE = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+?)\s*$|^\*\*\* Move to: (.+?)\s*$", re.MULTILINE)


def patch_writes(patch: str) -> list[tuple[str, str]]:
    """The files an apply_patch patch adds, updates, deletes or moves to."""
    out = []
    for verb, path, moved in _PATCH_FILE.findall(patch):
        out.append(("write", moved) if moved else ("delete" if verb == "Delete" else "write", path))
    return out


def _read(command: str, reading: Reading, cwd: str, depth: int) -> None:
    if depth > _DEPTH:
        reading.bypass.append("shell commands nested too deeply to read")
        return
    if re.search(r"core\.hookspath", command, re.IGNORECASE):
        reading.bypass.append("changes or overrides core.hooksPath")
    if _MANAGERS_OFF.search(command):
        reading.bypass.append("switches the hook manager that runs exo's git hooks off (HUSKY, LEFTHOOK, SKIP)")
    if "*** Begin Patch" in command:  # Codex's apply_patch, as a command with the patch inline
        reading.writes += patch_writes(command)
    for words in _commands(command):
        cwd = _read_one(words, reading, cwd, depth)


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


def _at(cwd: str, path: str) -> str:
    return path if not cwd or path.startswith(("/", "~")) else f"{cwd}/{path}"


def _read_one(words: list[str], reading: Reading, cwd: str, depth: int) -> str:
    """Record what one simple command writes; return the directory later commands run in."""
    # Redirections anywhere in the command: `> file`, `>> file`, `2> file`, `&> file`.
    i = 0
    plain: list[str] = []
    while i < len(words):
        word = words[i]
        if _REDIRECT.match(word) and i + 1 < len(words):
            target = words[i + 1]
            duplicate = word.endswith(">&") and (target.isdigit() or target == "-")  # 2>&1: not a file
            if not target.startswith("&") and target != "/dev/null" and not duplicate:
                reading.writes.append(("write", _at(cwd, target)))
            i += 2
            continue
        if word in ("<", "<<", "<<<") and i + 1 < len(words):
            i += 2
            continue
        plain.append(word)
        i += 1
    while plain and ("=" in plain[0] and not plain[0].startswith("-")):
        plain = plain[1:]  # leading VAR=value assignments
    while plain and plain[0] in ("sudo", "env", "command", "exec", "nohup", "time", "xargs", "builtin"):
        plain = plain[1:]
        while plain and "=" in plain[0] and not plain[0].startswith("-"):
            plain = plain[1:]  # env VAR=value CMD
    if not plain:
        return cwd
    name = plain[0].rsplit("/", 1)[-1]
    args = plain[1:]
    operands = [a for a in args if not a.startswith("-")]
    before = len(reading.writes)
    if name in ("cd", "pushd"):
        target = operands[0] if operands else "~"
        return target if target.startswith(("/", "~")) else _at(cwd, target)
    if name in _SHELLS and "-c" in args and args.index("-c") + 1 < len(args):
        _read(args[args.index("-c") + 1], reading, cwd, depth + 1)
    elif name == "eval":
        _read(" ".join(args), reading, cwd, depth + 1)
    elif name == "git":
        _read_git(args, reading, cwd)
    elif name in _WRITERS_ALL:
        operation = "delete" if name in _DELETERS else "into" if name == "mkdir" else "write"
        reading.writes += [(operation, path) for path in operands]
    elif name in _WRITERS_LAST and "-t" in args and args.index("-t") + 1 < len(args):
        reading.writes.append(("into", args[args.index("-t") + 1]))  # cp -t DIR FILES
    elif name in _WRITERS_LAST and len(operands) >= 2:
        reading.writes.append(("write", operands[-1]))
        if name == "mv":
            reading.writes += [("delete", path) for path in operands[:-1]]
    elif name == "tar" and ("-x" in args or (args and not args[0].startswith("--") and "x" in args[0])):
        reading.writes.append(("into", _option_value(args, "-C") or "."))
    elif name == "unzip":
        reading.writes.append(("into", _option_value(args, "-d") or "."))
    elif name == "patch":
        directory = _option_value(args, "-d")
        reading.writes.append(("write", operands[0]) if operands and not directory else ("into", directory or "."))
    elif name == "find" and any(a in ("-delete", "-exec", "-execdir", "-ok", "-fprint") for a in args):
        starts = args[: next((i for i, a in enumerate(args) if a.startswith("-")), len(args))]
        reading.writes += [("into", p) for p in starts or ["."]]
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
    if cwd:  # paths named by this command are relative to where `cd` took it
        reading.writes[before:] = [(op, _at(cwd, path)) for op, path in reading.writes[before:]]
    return cwd


def _option_value(args: list[str], option: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option) and len(arg) > len(option):
            return arg[len(option) :]
    return None


_GIT_VALUED = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env"}
_CONFIG_READS = {"--get", "--get-all", "--get-regexp", "--get-urlmatch", "--list", "-l", "get", "list"}


def _read_git(args: list[str], reading: Reading, cwd: str = "") -> None:
    rest = list(args)
    where = ""
    while rest and rest[0].startswith("-"):  # global options before the verb, some with a value
        if rest[0] == "-C" and len(rest) > 1:
            where = rest[1] if rest[1].startswith("/") else _at(where, rest[1])
        rest = rest[2:] if rest[0] in _GIT_VALUED else rest[1:]
    verb = rest[0] if rest else ""
    if verb in ("checkout", "restore") and "--" in rest:
        reading.writes += [("write", _at(where, p)) for p in rest[rest.index("--") + 1 :]]
    elif verb == "restore":
        reading.writes += [("write", _at(where, p)) for p in rest[1:] if not p.startswith("-")]
    elif verb == "apply" or verb == "am":
        reading.writes.append(("into", where or "."))
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
