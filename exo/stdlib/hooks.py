"""Agent hooks: `exo hook claude|cursor <event>` with the harness's JSON on stdin.

The PreToolUse path is the hottest code in exo (it runs on every agent edit), so this module and
what it imports are standard library only: it reads the session pointer, the pinned fence snapshot
(checking its hash) and the lease directly, and decides with the kernel's `check_action`. It fails
closed: junk input, an unknown tool, a missing session or any internal error is a deny. An allowed
call prints nothing (never a blanket `allow`, which would skip the user's permission prompts).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime

from exo.kernel import Action, Fence, StateError, check_action, load_governance
from exo.kernel.canon import canonical, sha256_hex
from exo.kernel.state import State, read_doc, write_doc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

AGENTS = ("claude", "codex", "cursor", "gemini")
MAX_INPUT = 10 << 20
FILE_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}
START_HINT = "no exo session is open in this worktree: run `exo next` then `exo session-start` first"


class Denied(Exception):
    """A decision to block the tool call, with the reason shown to the agent."""


class Session:
    """The open session as the hook needs it (read without pydantic)."""

    __slots__ = ("actor", "doc", "fence", "root", "sid", "ticket_id")

    def __init__(self, root: str, doc: dict[str, Any]) -> None:
        self.root = root
        self.doc = doc
        self.sid = str(doc["sid"])
        self.actor = str(doc["actor"])
        self.ticket_id = str(doc["ticket_id"])
        if sha256_hex(canonical(doc["fence"])) != doc["fence_sha256"]:
            raise Denied("the session's fence snapshot does not match its pinned hash")
        self.fence = Fence.from_dict(doc["fence"])


def find_root(start: str) -> str | None:
    """The worktree root at or above `start` (the directory holding `.git`), without running git."""
    path = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def open_session(root: str) -> Session | None:
    """This worktree's open session, or None. Raises Denied if its files are damaged."""
    try:
        state = State(root)
        sid = state.read_pointer()
        doc = read_doc(state.session(sid)) if sid else None
        return None if doc is None else Session(root, doc)
    except StateError as exc:
        raise Denied(f"the open session cannot be read: {exc.message}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise Denied(f"the open session cannot be read: {exc!r}") from exc


def live_lease(session: Session) -> None:
    """Raise Denied unless the session still holds a live lease (LOCK_LOST otherwise)."""
    lease = session.doc["lease"]
    try:
        stored = read_doc(State(session.root).lease(session.ticket_id), 1 << 20)
    except StateError:
        stored = None
    if not isinstance(stored, dict) or stored.get("lease_id") != lease["lease_id"] or stored.get("state") != "held":
        raise Denied("LOCK_LOST: this session's lease was released or taken over; start a new session")
    if datetime.fromisoformat(str(stored["expires_at"]).replace("Z", "+00:00")) <= datetime.now(UTC):
        raise Denied("LOCK_LOST: this session's lease expired; run `exo session-heartbeat` sooner, or start again")


Writes = list[tuple[str, str]]  # (operation, path): what a tool call would do to the tree


def decide(payload: dict[str, Any], tool: str, tool_input: dict[str, Any]) -> str | None:
    """None if the Claude Code tool call may proceed, else the reason to deny it."""
    if tool in FILE_TOOLS:
        path = tool_input.get(FILE_TOOLS[tool])
        if not isinstance(path, str) or not path:
            return f"{tool} call without a {FILE_TOOLS[tool]}"
        return judge(payload, [("write", path)])
    if tool == "Bash":
        return shell(payload, tool_input.get("command"))
    if tool == "apply_patch":  # Codex's file edits, when it calls apply_patch as a tool
        patch = tool_input.get("command", tool_input.get("input"))
        if not isinstance(patch, str):
            return "apply_patch call without a patch"
        from .shell import patch_writes

        writes = patch_writes(patch)
        return judge(payload, writes) if writes else "apply_patch call that names no file"
    if tool.startswith("mcp__"):
        server, _, name = tool[5:].partition("__")
        return mcp(payload, tool, name, tool_input, ours=server == "exo")
    known = "Write, Edit, MultiEdit, NotebookEdit, Bash, apply_patch and MCP tools"
    return f"exo does not know the tool {tool!r}; it decides {known}"


def shell(payload: dict[str, Any], command: object) -> str | None:
    """Decide a shell command: what it writes that exo governs, and any hook bypass it attempts."""
    if not isinstance(command, str):
        return "shell call without a command"
    from .shell import read_command  # only shell calls pay for shlex

    reading = read_command(command)
    if not reading.writes and not reading.bypass:
        return None  # writes nothing exo governs, wherever it runs: normal permissions apply
    return judge(payload, reading.writes, reading.bypass)


def mcp(payload: dict[str, Any], tool: str, name: str, tool_input: dict[str, Any], *, ours: bool) -> str | None:
    """Decide another MCP server's tool by the paths its arguments name; exo's own tools are the
    broker, and a tool named for reading writes nothing."""
    if ours or _reads_only(name):
        return None
    writes = [("write", p) for p in _mcp_paths(tool_input)]
    if not writes:
        return f"exo cannot tell which paths {tool} writes, so it is blocked in a governed session"
    return judge(payload, writes)


def judge(payload: dict[str, Any], writes: Writes, bypass: list[str] | None = None) -> str | None:
    """Decide `writes` (relative to the payload's cwd) against the open session's fence."""
    cwd = payload.get("cwd") or os.getcwd()
    if not isinstance(cwd, str):
        return "the hook input has no usable cwd"
    root = find_root(cwd)
    if root is None:
        return f"{cwd} is not inside a git repository governed by exo"
    if bypass:
        return "; ".join(bypass)
    session = open_session(root)
    if session is None:
        return START_HINT
    live_lease(session)
    gov = load_governance(root)
    for operation, path in writes:
        target = path if os.path.isabs(path) else os.path.join(cwd, path)
        if operation == "into":  # writing inside a directory (or making it): the session's if files in it are
            operation, target = "write", os.path.join(target, "x")
        decision = check_action(gov, session.fence, Action(session.actor, operation, target))
        if not decision.allowed:
            if gov.rules_of("error_budget"):
                from pathlib import Path  # only a denial under an error budget pays for these imports

                from .standing import note

                note(Path(root), gov, session.actor, "fence_violations")
            return f"fence [{decision.rule}]: {decision.reason}"
    return None


_READ_VERBS = frozenset(
    {"read", "get", "list", "search", "find", "view", "show", "stat", "info", "tree", "query", "fetch"}
    | {"describe", "count", "exists", "check"}
)
_PATH_KEYS = frozenset(
    {"path", "paths", "file", "files", "file_path", "filepath", "filename", "notebook_path", "uri"}
    | {"destination", "dest", "target", "source", "new_path", "old_path", "directory", "dir"}
)


def _reads_only(name: str) -> bool:
    """Whether an MCP tool's name says it only reads (`read_file`, `list_directory`, `getInfo`)."""
    first = re.split(r"[_\-.]|(?<=[a-z])(?=[A-Z])", name, maxsplit=1)[0].lower()
    return first in _READ_VERBS


def _mcp_paths(tool_input: dict[str, Any]) -> list[str]:
    """The paths an MCP tool's arguments name, at any depth (strings, lists of strings, file:// URIs)."""
    out: list[str] = []
    stack: list[Any] = [tool_input]
    while stack and len(out) < 1000:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and key.lower() in _PATH_KEYS:
                    values = value if isinstance(value, list) else [value]
                    out += [v.removeprefix("file://") for v in values if isinstance(v, str) and v]
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return out


def tool_call(payload: dict[str, Any], event: str) -> tuple[str, dict[str, Any]]:
    """The tool name and input every harness's pre-tool event carries (Denied if either is missing)."""
    tool, tool_input = payload.get("tool_name"), payload.get("tool_input")
    if not isinstance(tool, str) or not isinstance(tool_input, dict):
        raise Denied(f"{event} input without tool_name and tool_input")
    return tool, tool_input


def claude(event: str, payload: dict[str, Any], out: TextIO, err: TextIO, *, harness: str = "claude") -> int:
    """Claude Code's events; Codex CLI sends the same payloads and reads the same answers."""
    if event == "pre-tool-use":
        tool, tool_input = tool_call(payload, "PreToolUse")
        reason = unsandboxed(payload) if tool == "Bash" and harness == "claude" else None
        reason = reason or decide(payload, tool, tool_input)
        if reason is not None:
            raise Denied(reason)
        return 0
    if event == "session-start":
        if harness == "claude":
            sandbox_seen(payload)
        context = _bootstrap(payload)
        json.dump({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": context}}, out)
        return 0
    if event == "stop":
        if payload.get("stop_hook_active") is True:
            return 0  # already continuing because of this hook: never loop
        root = find_root(str(payload.get("cwd") or os.getcwd()))
        session = open_session(root) if root else None
        if session is not None:
            json.dump({"decision": "block", "reason": still_open(session)}, out)
        return 0
    if event == "session-end":
        return 0
    if event == "config-change" and harness == "claude":
        sandbox_seen(payload)
        return 0
    raise Denied(f"unknown {'Codex' if harness == 'codex' else 'Claude Code'} hook event {event!r}")


SANDBOX_NEEDS = ("sandbox-exec",) if sys.platform == "darwin" else ("bwrap", "socat")
CLAUDE_LOCAL = ".claude/settings.local.json"  # machine-local settings, where a session's sandbox goes
SANDBOX_WAIT = 10.0  # seconds a shell call waits for Claude Code to load a new session's sandbox


def unsandboxed(payload: dict[str, Any]) -> str | None:
    """Why a Bash call must be denied because the session's sandbox is not in force in Claude
    Code, or None (also None when no sandbox was written for the session).

    exo writes the session's sandbox into Claude Code's local settings at session start, often
    while Claude Code is already running. Claude Code applies the change only once it notices it
    (a second or so later; then it runs the ConfigChange hook, which marks the sandbox seen), and
    `failIfUnavailable` is only checked when it starts, so without the sandbox's programs on PATH
    it would run every later command unsandboxed. Until the sandbox is seen, the call waits."""
    found = _session_sandbox(payload)
    if found is None:
        return None  # no sandbox was configured for this session: the fence and the shell reader decide
    session, kept = found
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    missing = [n for n in SANDBOX_NEEDS if not any(os.access(os.path.join(d, n), os.X_OK) for d in dirs)]
    if missing:
        return (
            f"this session's shell commands run in Claude Code's sandbox, which needs {' and '.join(missing)}"
            " on PATH (Debian: apt install bubblewrap socat); install them and restart Claude Code"
        )
    deadline = time.monotonic() + SANDBOX_WAIT
    current: dict[str, Any] | None = kept
    while current is not None and current.get("seen") is not True:
        if time.monotonic() > deadline:
            return (
                f"Claude Code did not load this session's sandbox within {SANDBOX_WAIT:.0f} s (a version"
                " without the ConfigChange hook never says it did): restart Claude Code"
            )
        time.sleep(0.05)  # Claude Code notices the change meanwhile and runs the ConfigChange hook
        current = _kept_sandbox(session)
    return None


def sandbox_seen(payload: dict[str, Any]) -> None:
    """Claude Code loaded its settings (it started, or noticed a change): if its local settings
    hold exactly the sandbox exo wrote for the open session, that sandbox is now in force."""
    found = _session_sandbox(payload)
    if found is None or found[1].get("seen") is True:
        return
    session, kept = found
    try:
        with open(os.path.join(session.root, CLAUDE_LOCAL), "rb") as f:
            loaded = f.read(1 << 20).hex()
    except OSError:
        return
    if loaded == kept.get("after"):
        write_doc(State(session.root).sandbox_settings(session.sid), {**kept, "seen": True})


def _session_sandbox(payload: dict[str, Any]) -> tuple[Session, dict[str, Any]] | None:
    """The open session of the payload's worktree and what its start recorded of the sandbox it
    wrote for Claude Code; None without either."""
    root = find_root(str(payload.get("cwd") or os.getcwd()))
    session = open_session(root) if root else None
    kept = _kept_sandbox(session) if session else None
    return None if session is None or kept is None else (session, kept)


def _kept_sandbox(session: Session) -> dict[str, Any] | None:
    """What session start recorded of the sandbox it wrote for Claude Code; None if none was."""
    try:
        return read_doc(State(session.root).sandbox_settings(session.sid), 1 << 21)
    except StateError as exc:
        raise Denied(f"the session's sandbox record cannot be read: {exc.message}") from exc


# Cursor's preToolUse fires for every tool; its hook entry's matcher sends exo only these (the
# documented writers, the aliases field reports show, and every MCP tool). Reads are never denied
# even if a Cursor version ignores the matcher.
CURSOR_WRITERS = "Shell|Write|StrReplace|Edit|MultiEdit|Delete|MCP:.*"
CURSOR_EDITS = {"Write": "write", "StrReplace": "write", "Edit": "write", "MultiEdit": "write", "Delete": "delete"}
CURSOR_READS = frozenset({"Read", "Grep", "Glob", "LS", "Task", "SemanticSearch", "WebSearch", "WebFetch"})
CURSOR_PATH_KEYS = ("file_path", "path", "target_file", "filePath")
# exo-mcp's tools, which Cursor names `MCP:<tool>` without the server (tests keep this in step).
EXO_TOOLS = frozenset(
    {"status", "next", "ticket_create", "ticket_list", "ticket_show", "session_start", "session_heartbeat"}
    | {"session_finish", "session_handoff", "check", "doctor", "audit_verify"}
)


def cursor(event: str, payload: dict[str, Any], out: TextIO, err: TextIO) -> int:
    payload = _cursor_cwd(payload)
    if event == "pre-tool-use":
        tool, tool_input = tool_call(payload, "preToolUse")
        reason = cursor_decide(payload, tool, tool_input)
    elif event == "before-shell":
        reason = shell(payload, payload.get("command"))
    elif event == "session-start":
        json.dump({"additional_context": _bootstrap(payload)}, out)
        return 0
    elif event == "stop":
        json.dump(_cursor_stop(payload), out)
        return 0
    else:
        raise Denied(f"unknown Cursor hook event {event!r}")
    if reason is not None:
        raise Denied(reason)
    return 0


def cursor_decide(payload: dict[str, Any], tool: str, tool_input: dict[str, Any]) -> str | None:
    """None if the Cursor tool call may proceed, else the reason to deny it."""
    if tool in CURSOR_READS:
        return None
    if tool == "Shell":
        where = tool_input.get("working_directory")
        at = {**payload, "cwd": where} if isinstance(where, str) and where else payload
        return shell(at, tool_input.get("command"))
    if tool in CURSOR_EDITS:
        path = next((v for k in CURSOR_PATH_KEYS if isinstance(v := tool_input.get(k), str) and v), None)
        if path is None:
            return f"{tool} call without a path ({', '.join(CURSOR_PATH_KEYS)})"
        return judge(payload, [(CURSOR_EDITS[tool], path)])
    if tool.startswith("MCP:"):
        name = tool[4:]
        return mcp(payload, tool, name, tool_input, ours=name in EXO_TOOLS)
    return f"exo does not know the Cursor tool {tool!r}; it decides Shell, Write, Delete and MCP tools"


def _cursor_stop(payload: dict[str, Any]) -> dict[str, str]:
    """Ask the agent once to close its session when its loop completes with one still open (never
    after an abort or error, never again in a loop the follow-up started)."""
    if payload.get("status", "completed") != "completed" or payload.get("loop_count", 0) != 0:
        return {}
    root = find_root(str(payload.get("cwd") or os.getcwd()))
    session = open_session(root) if root else None
    return {} if session is None else {"followup_message": still_open(session)}


def still_open(session: Session) -> str:
    return (
        f"exo session {session.sid} on {session.ticket_id} is still open: run "
        '`exo session-finish --summary "..."` (or `exo session-handoff --to ACTOR --summary "..."`)'
        " before stopping"
    )


def _cursor_cwd(payload: dict[str, Any]) -> dict[str, Any]:
    roots = payload.get("workspace_roots")
    cwd = payload.get("cwd") or (roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None)
    return {**payload, "cwd": cwd}


# Gemini CLI: BeforeTool sees the tools named in its hook entry's matcher (the writers and every
# MCP tool); its file tools name `file_path`, its shell may run in `dir_path`, and an MCP call
# carries `mcp_context` naming the server.
GEMINI_WRITERS = "write_file|replace|run_shell_command|mcp_.*"
GEMINI_EDITS = frozenset({"write_file", "replace"})
GEMINI_READS = frozenset(
    {"read_file", "read_many_files", "glob", "search_file_content", "grep", "list_directory", "web_fetch"}
    | {"google_web_search", "save_memory", "write_todos"}
)


def gemini(event: str, payload: dict[str, Any], out: TextIO, err: TextIO) -> int:
    if event == "pre-tool-use":
        tool, tool_input = tool_call(payload, "BeforeTool")
        reason = gemini_decide(payload, tool, tool_input)
        if reason is not None:
            raise Denied(reason)
        return 0
    if event == "session-start":
        context = {"hookEventName": "SessionStart", "additionalContext": _bootstrap(payload)}
        json.dump({"hookSpecificOutput": context}, out)
        return 0
    if event == "after-agent":  # Gemini's end of a turn: ask once to close an open session
        root = find_root(str(payload.get("cwd") or os.getcwd()))
        session = open_session(root) if root and payload.get("stop_hook_active") is not True else None
        json.dump({} if session is None else {"decision": "deny", "reason": still_open(session)}, out)
        return 0
    raise Denied(f"unknown Gemini CLI hook event {event!r}")


def gemini_decide(payload: dict[str, Any], tool: str, tool_input: dict[str, Any]) -> str | None:
    """None if the Gemini CLI tool call may proceed, else the reason to deny it."""
    if tool in GEMINI_READS:
        return None
    if tool == "run_shell_command":
        where = tool_input.get("dir_path") or tool_input.get("directory")
        cwd = payload.get("cwd")
        if isinstance(where, str) and where and isinstance(cwd, str):
            payload = {**payload, "cwd": os.path.join(cwd, where)}
        return shell(payload, tool_input.get("command"))
    if tool in GEMINI_EDITS:
        path = tool_input.get("file_path")
        if not isinstance(path, str) or not path:
            return f"{tool} call without a file_path"
        return judge(payload, [("write", path)])
    context = payload.get("mcp_context")
    if isinstance(context, dict) and isinstance(context.get("tool_name"), str):
        name = context["tool_name"]
        return mcp(payload, tool, name, tool_input, ours=context.get("server_name") == "exo" and name in EXO_TOOLS)
    known = "write_file, replace, run_shell_command and MCP tools"
    return f"exo does not know the Gemini CLI tool {tool!r}; it decides {known}"


def _bootstrap(payload: dict[str, Any]) -> str:
    """The open session's bootstrap (imports the full stdlib: SessionStart is not on the hot path)."""
    from pathlib import Path

    root = find_root(str(payload.get("cwd") or os.getcwd()))
    if root is None:
        return "exo: this directory is not inside a git repository."
    from . import sessions

    text = sessions.bootstrap_of(Path(root))
    return text if text is not None else f"exo: {START_HINT}. Every write outside a session's fence is blocked."


def deny_output(agent: str, reason: str, out: TextIO, err: TextIO) -> int:
    """Print the agent's deny decision and the reason on stderr; exit status 2 blocks in both."""
    if agent == "gemini":
        json.dump({"decision": "deny", "reason": reason}, out)
    elif agent in ("claude", "codex"):
        decision = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason}
        json.dump({"hookSpecificOutput": decision}, out)
    else:
        json.dump({"permission": "deny", "user_message": reason, "agent_message": reason}, out)
    err.write(reason + "\n")
    return 2


def run(argv: list[str], stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """`exo hook AGENT EVENT`: returns the exit status. Every failure path denies (exit 2)."""
    agent = argv[0] if argv else ""
    try:
        if len(argv) != 2 or agent not in AGENTS:
            raise Denied(f"usage: exo hook {'|'.join(AGENTS)} EVENT (got {' '.join(argv) or 'nothing'})")
        raw = stdin.read(MAX_INPUT + 1)
        if len(raw) > MAX_INPUT:
            raise Denied("hook input larger than 10 MiB")
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise Denied(f"hook input is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise Denied("hook input is nested too deeply to read") from exc
        if not isinstance(payload, dict):
            raise Denied("hook input is not a JSON object")
        if agent == "cursor":
            return cursor(argv[1], payload, out, err)
        if agent == "gemini":
            return gemini(argv[1], payload, out, err)
        return claude(argv[1], payload, out, err, harness=agent)
    except Denied as exc:
        return deny_output(agent, f"exo: {exc}", out, err)
    except Exception as exc:  # fail closed: a crashing hook must never let the call through
        return deny_output(agent, f"exo: internal error in the hook ({type(exc).__name__}: {exc}); denied", out, err)


def main(argv: list[str]) -> int:
    return run(argv, sys.stdin, sys.stdout, sys.stderr)
