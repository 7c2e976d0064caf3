"""`exo hook-install`: git hooks (chaining what was there), Claude Code and Cursor hook configs.

Idempotent, undoable (`--uninstall`), and it never commits. Git hooks are rendered from a template
carrying a marker, so install and uninstall recognise their own scripts; a foreign hook is kept as
`<name>.exo-chained` and run first. JSON configs are merged: user keys are never lost.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from exo.kernel import ExoError, StateError
from exo.kernel.fs import atomic_write, read_file

from . import git, jsonfile, keys, managers
from .hooks import CURSOR_WRITERS, GEMINI_WRITERS

MARKER = "# exo-managed-hook"
GIT_HOOKS = managers.GIT_HOOKS
CHAINED = ".exo-chained"
CLAUDE_SETTINGS = ".claude/settings.json"
CURSOR_HOOKS = ".cursor/hooks.json"
CODEX_HOOKS = ".codex/hooks.json"
GEMINI_SETTINGS = ".gemini/settings.json"
# Every tool that can write: the file tools, the shell, and every MCP server's tools (the hook lets
# exo's own through and decides which of the others write).
CLAUDE_WRITERS = "Write|Edit|MultiEdit|NotebookEdit|Bash|mcp__.*"
CLAUDE_EVENTS = {
    "PreToolUse": (CLAUDE_WRITERS, "hook claude pre-tool-use"),
    "SessionStart": ("startup|resume|clear|compact", "hook claude session-start"),
    "Stop": (None, "hook claude stop"),
    "SessionEnd": (None, "hook claude session-end"),
    "ConfigChange": ("local_settings", "hook claude config-change"),  # a session's sandbox took effect
}
# Cursor: (matcher, command, fails closed). preToolUse sees only the tools that write; a broken
# hook on a gate blocks the call (`failClosed`), while context and reminders fail open.
# Codex CLI sends Claude Code's payloads; its file edits arrive as apply_patch (or a Bash command
# carrying the patch). A Codex hook that fails lets the call through, so the gate exits 2 itself.
CODEX_EVENTS = {
    "PreToolUse": ("Bash|apply_patch|mcp__.*", "hook codex pre-tool-use"),
    "SessionStart": ("startup|resume|clear", "hook codex session-start"),
    "Stop": (None, "hook codex stop"),
}
# Gemini CLI: the same shape as Codex's; a failing hook only warns, so the gate exits 2 itself.
GEMINI_EVENTS = {
    "BeforeTool": (GEMINI_WRITERS, "hook gemini pre-tool-use"),
    "SessionStart": (None, "hook gemini session-start"),
    "AfterAgent": (None, "hook gemini after-agent"),
}
CURSOR_EVENTS = {
    "preToolUse": (CURSOR_WRITERS, "hook cursor pre-tool-use", True),
    "beforeShellExecution": (None, "hook cursor before-shell", True),
    "sessionStart": (None, "hook cursor session-start", False),
    "stop": (None, "hook cursor stop", False),
}
# exo's own entries in a harness config: `<exo> hook AGENT EVENT`, with a gate's `|| exit 2`.
_OURS = re.compile(r"(?:(?:^|[/\s'\"$])exo['\"]?|-m exo) hook (?:claude|codex|cursor|gemini) [a-z-]+(?: \|\| exit 2)?$")

TEMPLATE = """#!/bin/sh
{marker} (`exo hook-install --uninstall` removes it and restores a chained hook)
chained="$(dirname "$0")/{name}{chained}"
if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
{run}
"""


class InstallResult(BaseModel):
    """What hook-install changed (repo-relative or absolute paths)."""

    changed: list[str] = Field(description="Files written or removed.")
    unchanged: list[str] = Field(description="Files already as they should be.")
    chained: list[str] = Field(description="Existing hooks kept and run before exo's.")
    warnings: list[str] = Field(default_factory=list, description="What still needs doing by hand.")


def exo_command() -> str:
    """How a git hook should start exo, as a shell prefix: this installation's `exo` script, else
    this interpreter with `-m exo`."""
    import shlex
    import shutil
    import sys

    beside = Path(sys.executable).parent / "exo"
    if beside.exists():
        return shlex.quote(str(beside))
    found = shutil.which("exo")
    return shlex.quote(found) if found else f"{shlex.quote(sys.executable)} -m exo"


def hooks_dir(root: Path) -> Path:
    """Where git looks for hooks: core.hooksPath if set (relative to the worktree), else the common dir's."""
    setting = git.config_value(root, "core.hooksPath")
    if setting:
        path = Path(os.path.expanduser(setting))
        return path if path.is_absolute() else root / path
    return git.common_dir(root) / "hooks"


def install(
    root: Path,
    *,
    git_hooks: bool,
    claude: bool,
    cursor: bool,
    exe: str,
    codex: bool = False,
    gemini: bool = False,
    uninstall: bool = False,
    agent_exe: str | None = None,
) -> InstallResult:
    """Install (or remove) the chosen hooks. `exe` is the shell prefix the git hooks start exo
    with; `agent_exe` the one the agent harnesses' configs use (default `exe`; `exo install` gives
    `managers.AGENT_EXE`, which names no path of this machine in those usually tracked files)."""
    result = InstallResult(changed=[], unchanged=[], chained=[])
    if not uninstall or git_hooks:
        _record_command(root, exe, uninstall=uninstall)
    if git_hooks:
        _git_hooks(root, exe, result, uninstall=uninstall)
    exe = agent_exe or exe
    if claude:
        _merge_json(root / CLAUDE_SETTINGS, lambda: _claude_entries(exe), uninstall, result)
    if cursor:
        _merge_json(root / CURSOR_HOOKS, lambda: _cursor_entries(exe), uninstall, result)
    if codex:
        _merge_json(root / CODEX_HOOKS, lambda: _gated_entries(exe, CODEX_EVENTS, "PreToolUse", 30), uninstall, result)
    if gemini:
        gemini_entries = partial(_gated_entries, exe, GEMINI_EVENTS, "BeforeTool", 30_000)  # milliseconds
        _merge_json(root / GEMINI_SETTINGS, gemini_entries, uninstall, result)
    return result


def _git_hooks(root: Path, exe: str, result: InstallResult, *, uninstall: bool) -> None:
    """exo's git hooks where this clone's hooks live: in a hook manager's configuration if one owns
    them, else as scripts in the hooks directory. Anything inside the worktree may be tracked, so
    it starts exo by the command each clone records (`git config exo.command`), never by a path."""
    manager = managers.detect(root)
    if manager is not None:
        managers.install(root, manager, result, uninstall=uninstall)
        return
    directory = hooks_dir(root)
    tracked = directory.resolve().is_relative_to(root.resolve()) and not _in_git_dir(root, directory)
    for name in GIT_HOOKS:
        run = managers.resolved(name) if tracked else f'exec {exe} hook git {name} "$@"'
        (_remove_git_hook if uninstall else _install_git_hook)(directory, name, run, result)


def _in_git_dir(root: Path, directory: Path) -> bool:
    return directory.resolve().is_relative_to(git.common_dir(root).resolve())


def _record_command(root: Path, exe: str, *, uninstall: bool) -> None:
    """Record this clone's exo executable for hooks kept in tracked files (a local git setting)."""
    import shlex

    words = shlex.split(exe)
    if uninstall:
        git.run(root, "config", "--unset", managers.COMMAND_KEY, check=False)
    elif len(words) == 1 and os.path.isabs(words[0]):
        git.run(root, "config", managers.COMMAND_KEY, words[0])


def _install_git_hook(directory: Path, name: str, run: str, result: InstallResult) -> None:
    path = directory / name
    script = TEMPLATE.format(marker=MARKER, name=name, chained=CHAINED, run=run)
    current = read_file(path) if path.is_file() else None
    if current is not None and MARKER.encode() not in current:
        chained = path.with_name(name + CHAINED)
        if chained.exists():
            raise StateError(f"{path} and {chained} both exist", code="IO_ERROR", hint="merge them by hand first")
        path.rename(chained)
        result.chained.append(str(chained))
        current = None
    if current == script.encode():
        result.unchanged.append(str(path))
        return
    atomic_write(path, script.encode())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    result.changed.append(str(path))


def _remove_git_hook(directory: Path, name: str, run: str, result: InstallResult) -> None:
    path = directory / name
    current = read_file(path) if path.is_file() else None
    if current is None or MARKER.encode() not in current:
        result.unchanged.append(str(path))
        return
    path.unlink()
    chained = path.with_name(name + CHAINED)
    if chained.exists():
        chained.rename(path)
    result.changed.append(str(path))


def _ours(entry: Any) -> bool:
    hooks = entry.get("hooks", []) if isinstance(entry, dict) else []
    commands = [h.get("command", "") for h in hooks if isinstance(h, dict)]
    if isinstance(entry, dict) and "command" in entry:
        commands.append(entry["command"])
    return any(isinstance(c, str) and _OURS.search(c) for c in commands)


def _claude_entries(exe: str) -> dict[str, list[dict[str, Any]]]:
    """Absolute commands (a hook that cannot start is a non-blocking error to Claude Code), and the
    PreToolUse hook fails closed: if it cannot run, the tool call is blocked (`onFailure`)."""
    out = {}
    for event, (matcher, command) in CLAUDE_EVENTS.items():
        start = exe if event == "PreToolUse" else managers.non_blocking(exe)
        hook: dict[str, Any] = {"type": "command", "command": f"{start} {command}", "timeout": 30}
        if event == "PreToolUse":
            hook["onFailure"] = "block"
        entry: dict[str, Any] = {"hooks": [hook]}
        if matcher:
            entry = {"matcher": matcher, **entry}
        out[event] = [entry]
    return out


def _gated_entries(
    exe: str, events: dict[str, tuple[str | None, str]], gate_event: str, timeout: int
) -> dict[str, list[dict[str, Any]]]:
    """Claude-shaped entries for a harness whose failing hook lets the call through: the gate's
    command exits 2 (block) itself when exo cannot run."""
    out = {}
    for event, (matcher, command) in events.items():
        start, gate = (exe, " || exit 2") if event == gate_event else (managers.non_blocking(exe), "")
        entry: dict[str, Any] = {
            "hooks": [{"type": "command", "command": f"{start} {command}{gate}", "timeout": timeout}]
        }
        out[event] = [{"matcher": matcher, **entry} if matcher else entry]
    return out


def _cursor_entries(exe: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event, (matcher, command, closed) in CURSOR_EVENTS.items():
        entry: dict[str, Any] = {"command": f"{exe if closed else managers.non_blocking(exe)} {command}"}
        if matcher:
            entry["matcher"] = matcher
        if closed:
            entry["failClosed"] = True
        out[event] = [entry]
    return out


def _merge_json(path: Path, entries: Any, uninstall: bool, result: InstallResult) -> None:
    def merge(doc: dict[str, Any]) -> None:
        hooks = doc.setdefault("hooks", {})
        if not isinstance(hooks, dict):
            raise ValueError("hooks is not an object")
        if path.parent.name == ".cursor":  # Cursor wants its format version
            doc.setdefault("version", 1)
        for event, ours in entries().items():
            kept = [e for e in hooks.get(event, []) if not _ours(e)]
            hooks[event] = kept if uninstall else [*kept, *ours]
            if not hooks[event]:
                del hooks[event]

    (result.changed if jsonfile.edit(path, merge, create=not uninstall) else result.unchanged).append(str(path))


class InstallSummary(BaseModel):
    """What `exo install` changed (it never commits)."""

    changed: list[str] = Field(description="Files created or rewritten.")
    unchanged: list[str] = Field(description="Files already as they should be.")
    warnings: list[str] = Field(default_factory=list, description="Configured commands that do not resolve here.")


def install_all(root: Path, harnesses: list[str] | None = None) -> InstallSummary:
    """`exo install`: init, git hooks, and each chosen harness's hooks and adapters (default: the
    harnesses the repository already has files for, or every one); idempotent, never commits."""
    from .adapters import harnesses_of, write_adapters
    from .scaffold import init_repo

    chosen = harnesses_of(root, harnesses)  # before anything is written that would be detected
    init = init_repo(root)
    agent_hooks = {h: h in chosen for h in ("claude", "cursor", "codex", "gemini")}
    hooks = install(root, git_hooks=True, exe=exo_command(), agent_exe=managers.AGENT_EXE, **agent_hooks)
    written = write_adapters(root, chosen)
    lock = [init.governance.lock] if init.governance.changed else []
    broker, warnings = _broker_key()
    denied, kept, unwritten = _keep_key_from_claude() if agent_hooks["claude"] and keys.broker() else ([], [], [])
    based, same, unbased = _claude_baseline(root) if agent_hooks["claude"] else ([], [], [])
    return InstallSummary(
        changed=init.created + lock + hooks.changed + written.changed + broker + denied + based,
        unchanged=init.kept + hooks.unchanged + written.unchanged + kept + same,
        warnings=hooks.warnings + unresolved(exo_command()) + warnings + unwritten + unbased,
    )


def _claude_baseline(root: Path) -> tuple[list[str], list[str], list[str]]:
    """Claude Code's sandbox between sessions, in its local settings (kept out of git through
    `.git/info/exclude`: it names this machine's paths): (changed, unchanged, a warning)."""
    from . import runtime, sandbox
    from .adapters import MCP_CONFIGS
    from .hooks import CLAUDE_LOCAL, SANDBOX_NEEDS

    missing = " and ".join(name for name in SANDBOX_NEEDS if shutil.which(name) is None)
    if missing:
        return [], [], [f"Claude Code's shell runs unsandboxed between sessions: install {missing}, then exo install"]
    if runtime.current(root) is not None:
        return [], [], ["Claude Code's sandbox between sessions is written only while no session is open"]
    baseline = sandbox.claude_baseline(root, MCP_CONFIGS["claude"][1])

    def put(doc: dict[str, Any]) -> None:
        doc["sandbox"] = baseline

    changed: list[str] = []
    unchanged: list[str] = []
    (changed if jsonfile.edit(root / CLAUDE_LOCAL, put) else unchanged).append(CLAUDE_LOCAL)
    exclude = git.common_dir(root) / "info" / "exclude"
    lines = (read_file(exclude) or b"").decode(errors="replace").splitlines()
    if f"/{CLAUDE_LOCAL}" not in lines:
        atomic_write(exclude, "\n".join([*lines, f"/{CLAUDE_LOCAL}"]).encode() + b"\n")
        changed.append(str(exclude))
    return changed, unchanged, []


def _broker_key() -> tuple[list[str], list[str]]:
    """This machine's broker key, created if missing: ([its path] if created now, [a warning] if it
    cannot be made — a repository without the signatures rule works without one)."""
    try:
        key, created = keys.create_broker()
    except ExoError as exc:
        return [], [f"no broker key, so session records go unsigned: {exc.message} ({exc.hint})"]
    return ([key.source] if created else []), []


def claude_user_settings() -> Path:
    """Claude Code's user settings, which apply in every project on this machine."""
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / "settings.json"


def _keep_key_from_claude() -> tuple[list[str], list[str], list[str]]:
    """Claude Code's user settings deny its file tools the broker key from the moment it starts
    (rules written mid-run only take effect once it notices the change): (changed, unchanged, a
    warning if the file could not be edited)."""
    from .sandbox import keep_key_from_claude

    path = claude_user_settings()
    try:
        changed = jsonfile.edit(path, keep_key_from_claude)
    except StateError as exc:
        return [], [], [f"Claude Code's file tools can read the broker key: {exc.message} ({exc.hint})"]
    return ([str(path)], [], []) if changed else ([], [str(path)], [])


def unresolved(exe: str) -> list[str]:
    """What the configured commands need but this machine does not have: exo's own executable
    (the hooks run it by absolute path) and `exo-mcp` on PATH (the MCP configs name it)."""
    import shlex
    import shutil

    out = []
    program = shlex.split(exe)[0]
    if not (os.path.isfile(program) and os.access(program, os.X_OK)):
        out.append(f"the hooks run {program}, which is not an executable file here")
    if shutil.which("exo-mcp") is None:
        beside = Path(program).parent / "exo-mcp"
        where = f" (it is at {beside}: put {beside.parent} on PATH)" if beside.exists() else ""
        out.append(f"exo-mcp is not on PATH, so the MCP configs cannot start it{where}")
    return out
