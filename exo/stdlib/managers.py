"""Git hooks in files a team tracks: husky v9, lefthook, and hook directories under version control.

A hook manager regenerates the files git runs (husky's `.husky/_/`, lefthook's `.git/hooks/*`), so
exo adds itself to what the manager reads instead: a managed block in `.husky/<hook>`, or an
`extends` entry in `lefthook.yml` naming `.exo/lefthook.yml`. Every tracked line starts exo by a
command resolved when the hook runs (`git config exo.command`, which `exo hook-install` sets in
each clone, else `exo` on PATH) and refuses the commit with a clear message if there is none: a
machine-local path in a tracked file would break every teammate's commits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from exo.kernel import StateError
from exo.kernel.fs import atomic_write, read_file

from . import git

if TYPE_CHECKING:
    from .install import InstallResult

GIT_HOOKS = ("pre-commit", "prepare-commit-msg")
BEGIN = "# exo:begin - managed by `exo hook-install`; edit outside this block"
END = "# exo:end"
COMMAND_KEY = "exo.command"  # this clone's exo executable, for hooks in tracked files


def _lookup(refused: str, status: int) -> str:
    """Shell that sets $exo to this clone's exo, or says why not and exits `status`."""
    return (
        f'exo="$(git config --get {COMMAND_KEY} || command -v exo)" || {{ '
        f'echo "error[EXO_NOT_FOUND]: exo is not installed in this clone, so {refused} is refused" >&2; '
        f'echo "hint: install exo, then run \\`exo hook-install\\` here (or put exo on PATH)" >&2; exit {status}; }}'
    )


RESOLVE = _lookup("the commit", 1)
# How an agent harness's hook (in a usually tracked config) starts exo: the same lookup, and exit
# 2 — the status every harness reads as "block" — when there is no exo to run.
AGENT_EXE = _lookup("the tool call", 2) + '; "$exo"'


def non_blocking(exe: str) -> str:
    """`exe` for a hook that must not block when exo is missing: exit 2 from a Stop hook would keep
    the agent from ever stopping."""
    return exe.replace("exit 2; }", "exit 1; }")


LEFTHOOK_CONFIGS = ("lefthook.yml", "lefthook.yaml", ".lefthook.yml", ".lefthook.yaml")
LEFTHOOK_FRAGMENT = ".exo/lefthook.yml"
HUSKY_PATHS = (".husky/_", ".husky")


def resolved(hook: str, args: str = '"$@"') -> str:
    """Shell lines that find exo when the hook runs and hand it the hook (refusing if none)."""
    return f'{RESOLVE}\n"$exo" hook git {hook} {args}'


def detect(root: Path) -> str | None:
    """Which manager owns this clone's git hooks: `husky`, `lefthook`, or None."""
    if (git.config_value(root, "core.hooksPath") or "").rstrip("/") in HUSKY_PATHS:
        return "husky"
    if lefthook_config(root) is not None:
        return "lefthook"
    return None


def lefthook_config(root: Path) -> Path | None:
    return next((root / name for name in LEFTHOOK_CONFIGS if (root / name).is_file()), None)


def upsert(text: str, block: str, *, first: bool) -> str:
    """`text` with exo's block in place (first: after any shebang), user lines kept byte for byte."""
    text = remove(text)
    managed = f"{BEGIN}\n{block.rstrip()}\n{END}\n"
    if not first:
        return (text.rstrip("\n") + "\n\n" if text.strip() else "") + managed
    if text.startswith("#!"):
        shebang, _, rest = text.partition("\n")
        return f"{shebang}\n{managed}{rest}"
    return managed + text


def remove(text: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end < start:
        return text
    before, after = text[:start], text[end + len(END) :].removeprefix("\n")
    if not after and before.endswith("\n\n"):
        before = before[:-1]  # the blank line `upsert` put before an appended block
    return before + after


def install(root: Path, manager: str, result: InstallResult, *, uninstall: bool) -> None:
    """Add exo to (or take it out of) the manager's own configuration."""
    if manager == "husky":
        for hook in GIT_HOOKS:
            _edit(root, root / ".husky" / hook, resolved(hook), result, uninstall=uninstall, first=True)
        return
    config = lefthook_config(root)
    assert config is not None
    fragment = root / LEFTHOOK_FRAGMENT
    lines = [f"{hook}:\n  commands:\n    exo:\n      run: |\n{_indent(resolved(hook, '{0}'), 8)}" for hook in GIT_HOOKS]
    content = "# exo's git hooks for lefthook (`exo hook-install` writes this file; lefthook.yml extends it)\n"
    _write(fragment, None if uninstall else content + "\n".join(lines), result)
    _edit(root, config, f"extends:\n  - {LEFTHOOK_FRAGMENT}", result, uninstall=uninstall, first=False)
    installed = [read_file(git.common_dir(root) / "hooks" / hook) or b"" for hook in GIT_HOOKS]
    if not uninstall and not all(b"lefthook" in script for script in installed):
        result.warnings.append(f"{config.name} is here but lefthook's hooks are not: run `lefthook install`")


def _edit(root: Path, path: Path, block: str, result: InstallResult, *, uninstall: bool, first: bool) -> None:
    raw = read_file(path)
    text = raw.decode() if raw is not None else ""
    if path.name.startswith(("lefthook", ".lefthook")) and not uninstall and BEGIN not in text:
        _no_extends(text, path)
    new = remove(text) if uninstall else upsert(text, block, first=first)
    created_by_us = raw is not None and not remove(text).strip()
    _write(path, None if uninstall and created_by_us else new, result)


def _no_extends(text: str, path: Path) -> None:
    if re.search(r"^extends\s*:", text, re.MULTILINE):
        raise StateError(
            f"{path.name} already has an `extends` list, which exo cannot edit without touching your lines",
            code="INVALID_ARGUMENT",
            hint=f"add `{LEFTHOOK_FRAGMENT}` to that list by hand, then rerun `exo hook-install`",
        )


def _write(path: Path, content: str | None, result: InstallResult) -> None:
    current = read_file(path)
    if content is None:
        if current is None:
            result.unchanged.append(str(path))
            return
        path.unlink()
    elif current == content.encode():
        result.unchanged.append(str(path))
        return
    else:
        atomic_write(path, content.encode())
    result.changed.append(str(path))


def _indent(text: str, width: int) -> str:
    return "".join(" " * width + line + "\n" for line in text.splitlines())
