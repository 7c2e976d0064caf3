"""The OS sandbox an agent's commands run in, compiled from its session's fence (SPEC §12).

Inside it the whole file system is read-only except: the directories that hold the fence's paths
(each allow glob's literal prefix), git's object store, refs and index (so the agent can commit),
and a private temp directory. Everything governance rests on is bound read-only on top, even where
it lies inside a writable directory: `.exo/`, the runtime directory, `.git/config`, `.git/hooks/`,
`.git/info/`, a linked worktree's `commondir` and `gitdir`, and every protected path of the
worktree (hook, harness and CI configuration). The sandbox also gets its own process and IPC
namespaces, so the agent cannot see, signal or trace exo's own processes outside it.

The sandbox is directory-grained: a deny glob or a file-level glob inside a writable directory is
enforced by the agent hooks and at finish, not here (docs/security.md).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from exo.kernel import Action, Fence, InputError, StateError, check_action, load_governance
from exo.kernel.fs import atomic_write, git_common_dir, read_file, worktree_git_dir
from exo.kernel.layout import EXO_DIR
from exo.kernel.state import State, read_doc, remove, write_doc

from . import keys
from .hooks import CLAUDE_LOCAL
from .runtime import OpenSession, fence_of

MARKER = "EXO_SANDBOX"  # set in every sandboxed process: exo's friendly errors and hooks read it
GIT_READONLY = ("config", "hooks", "info", "exo", "modules")  # under the common dir: what runs code or is exo's
WORKTREE_READONLY = ("commondir", "gitdir", "config.worktree")  # under each linked worktree's git dir
_GLOB = frozenset("*?[{!")


@dataclass(frozen=True, slots=True)
class Plan:
    """What the sandbox lets a session write, and what it binds read-only on top."""

    root: Path
    writable: tuple[Path, ...]
    readonly: tuple[Path, ...]
    temp: Path
    hidden: tuple[Path, ...] = ()  # directories whose contents the sandbox cannot read (exo's keys)
    shadowed: tuple[Path, ...] = ()  # sockets it cannot connect to (a key agent signs for anyone)

    def argv(self, bwrap: str, command: Sequence[str], cwd: Path) -> list[str]:
        """The bubblewrap command line running `command` in this sandbox."""
        args = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
        if not sys.stdin.isatty():
            args.append("--new-session")  # no terminal to inject keystrokes into (TIOCSTI)
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in (*self.writable, self.temp):
            args += ["--bind", str(path), str(path)]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
        for path in self.hidden:
            args += ["--tmpfs", str(path), "--remount-ro", str(path)]
        for path in self.shadowed:
            args += ["--ro-bind", "/dev/null", str(path)]
        return [*args, "--chdir", str(cwd), "--", *command]


def plan(root: Path, session: OpenSession, temp: Path) -> Plan:
    """Compile the session's fence into a sandbox plan (nothing is created but missing scope dirs)."""
    root = root.resolve()
    writes = _writer(root, fence_of(session), session.actor)
    places = {_scope_dir(root, writes, glob) for glob in session.allow_globs}
    common = git_common_dir(root).resolve()
    own = worktree_git_dir(root).resolve()
    writable = sorted({p for p in places if p is not None} | {common, own})
    shown = tuple(p for p in _readonly(root, writes) if _under_any(p, writable))
    return Plan(root, tuple(writable), shown, temp, hidden())


KEY_AGENTS = ("SSH_AUTH_SOCK",)  # variables naming the socket of an agent that signs with the human's keys


def key_agents(env: Mapping[str, str]) -> tuple[Path, ...]:
    """The key agents' sockets `env` names (ssh-agent holds the human's git signing key: whoever
    reaches it signs as the human)."""
    found = (Path(env[name]) for name in KEY_AGENTS if env.get(name))
    return tuple(p.resolve() for p in found if p.is_socket())


def hidden() -> tuple[Path, ...]:
    """What the agent may not even read: this machine's broker key (it signs session records)."""
    place = keys.broker_dir()
    return (place.resolve(),) if place.is_dir() else ()


def _writer(root: Path, fence: Fence, actor: str) -> Callable[[str], bool]:
    """Whether `actor` may write a repo-relative path inside `fence` (and the constitution); also
    makes sure git's code directories exist to be bound read-only (`prepare`)."""
    gov = load_governance(root)
    prepare(root)
    return lambda rel: check_action(gov, fence, Action(actor, "write", rel)).allowed


def _readonly(root: Path, writes: Callable[[str], bool]) -> list[Path]:
    """What stays read-only however much of the worktree is writable: git's settings and exo's
    state, and every top-level entry the fence refuses (protected and out-of-scope paths)."""
    common, own = git_common_dir(root).resolve(), worktree_git_dir(root).resolve()
    readonly = {common / name for name in GIT_READONLY} | {root / EXO_DIR}
    for gitdir in [own, *sorted((common / "worktrees").glob("*"))]:
        readonly |= {gitdir / name for name in WORKTREE_READONLY}
    with os.scandir(root) as entries:
        readonly |= {root / e.name for e in entries if not writes(f"{e.name}/x" if _is_dir(e) else e.name)}
    readonly -= {common, own, root / ".git"} if (root / ".git").is_dir() else {common, own}
    return sorted(p for p in readonly if os.path.lexists(p))


# --- Claude Code's own sandbox, compiled from the same fence


def claude_settings(root: Path, session: OpenSession) -> dict[str, object]:
    """Claude Code's `sandbox` settings for the session: its Bash commands (and their children)
    run under bubblewrap or Seatbelt, unable to write what exo's own sandbox keeps read-only;
    never without it (`failIfUnavailable`, no unsandboxed escape hatch)."""
    return _claude_sandbox(root, _writer(root, fence_of(session), session.actor), auto_allow=True)


def claude_baseline(root: Path, actor: str) -> dict[str, object]:
    """Claude Code's `sandbox` settings between sessions (`exo install` writes them): its shell
    cannot read the broker key, nor write what no agent session ever may (git's settings and
    hooks, exo's state, protected paths); other writes are the hooks' to decide, as before, and
    the user's permission prompts stay as they were. `actor` is whom Claude Code's MCP server acts
    for: its tier decides, as in a session."""
    return _claude_sandbox(root, _writer(root, Fence.from_globs(["**"]), actor), auto_allow=False)


def _claude_sandbox(root: Path, writes: Callable[[str], bool], *, auto_allow: bool) -> dict[str, object]:
    root = root.resolve()
    deny = ["/" + str(p) for p in _readonly(root, writes)]  # `//` is an absolute path to Claude Code
    return {
        "enabled": True,
        "failIfUnavailable": True,
        "allowUnsandboxedCommands": False,
        "autoAllowBashIfSandboxed": auto_allow,
        "filesystem": {"denyWrite": deny, "denyRead": ["/" + str(p) for p in hidden()]},
    }


def keep_key_from_claude(doc: dict[str, Any]) -> None:
    """Add to a Claude Code settings document the permission rules that keep its file tools (Read,
    Grep, Glob, Edit) out of the broker key's directory. Those tools run in Claude Code's own
    process, outside its sandbox, so the sandbox's `denyRead` does not reach them; these rules do,
    in every permission mode. ValueError if the document's `permissions` is in another shape."""
    permissions = doc.setdefault("permissions", {})
    deny = permissions.setdefault("deny", []) if isinstance(permissions, dict) else None
    if not isinstance(deny, list):
        raise ValueError("permissions.deny is not a list")
    rules = [f"{tool}(/{p}/**)" for p in hidden() for tool in ("Read", "Edit")]  # `//` is absolute
    deny += [r for r in rules if r not in deny]


def claude_enter(root: Path, session: OpenSession) -> bool:
    """Write the session's sandbox into Claude Code's local settings, where exo's Claude hooks are
    installed. The file's bytes before and after are kept in the runtime directory: drift does not
    count exo's own write, and `claude_leave` puts the file back as it was."""
    from . import install, jsonfile

    shared = read_file(root / install.CLAUDE_SETTINGS)
    if shared is None or b"hook claude pre-tool-use" not in shared:
        return False
    path = root / CLAUDE_LOCAL
    before = read_file(path)
    settings = claude_settings(root, session)

    def enter(doc: dict[str, Any]) -> None:
        doc["sandbox"] = settings
        keep_key_from_claude(doc)

    jsonfile.edit(path, enter)
    after = read_file(path) or b""
    kept = {"before": None if before is None else before.hex(), "after": after.hex()}
    write_doc(State(root).sandbox_settings(session.sid), kept)
    return True


def claude_owned(root: Path, session: OpenSession) -> set[str]:
    """{CLAUDE_LOCAL} while it holds exactly what `claude_enter` wrote (exo's write, not drift)."""
    kept = _kept_doc(root, session)
    if kept is None or (read_file(root / CLAUDE_LOCAL) or b"").hex() != kept.get("after"):
        return set()
    return {CLAUDE_LOCAL}


def claude_leave(root: Path, session: OpenSession) -> None:
    """Put Claude Code's local settings back as they were, unless someone changed them since."""
    kept = _kept_doc(root, session)
    if kept is None:
        return
    path = root / CLAUDE_LOCAL
    if CLAUDE_LOCAL in claude_owned(root, session):
        before = kept.get("before")
        if before is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, bytes.fromhex(str(before)))
    remove(State(root).sandbox_settings(session.sid))


def _kept_doc(root: Path, session: OpenSession) -> dict[str, Any] | None:
    """What `claude_enter` recorded; None when missing or damaged (then nothing is restored)."""
    try:
        return read_doc(State(root).sandbox_settings(session.sid))
    except StateError:
        return None


def prepare(root: Path) -> None:
    """Make the directories git reads code from exist, so that a sandbox can bind them read-only
    (a missing one could otherwise be created inside it). Session start calls this."""
    common = git_common_dir(root)
    for name in ("hooks", "info", "modules"):
        (common / name).mkdir(exist_ok=True)


def _scope_dir(root: Path, writes: Callable[[str], bool], glob: str) -> Path | None:
    """The directory an allow glob's paths live in: its literal prefix (created if missing), or
    None where that directory is not the session's to write (outside the repository, protected)."""
    parts = glob.strip("/").split("/")
    literal: list[str] = []
    for part in parts:
        if _GLOB & set(part):
            break
        literal.append(part)
    if len(literal) == len(parts) and not (root / glob).is_dir():
        literal = literal[:-1]  # a literal file: the directory it is in
    place = root.joinpath(*literal)
    try:
        place.mkdir(parents=True, exist_ok=True)
        real = place.resolve(strict=True)
    except OSError:
        return None
    if not real.is_relative_to(root):
        return None  # a symlink out of the repository: never made writable
    rel = real.relative_to(root).as_posix()
    if rel != "." and not writes(f"{rel}/x"):
        return None  # e.g. a symlink into .git or .exo
    return real


def _is_dir(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir(follow_symlinks=False)


def _under_any(path: Path, places: list[Path]) -> bool:
    return any(path.is_relative_to(place) for place in places)


def bubblewrap() -> str | None:
    """The bubblewrap executable, if there is one that works here."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = subprocess.run(
        [found, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "true"], capture_output=True, check=False
    )
    return found if probe.returncode == 0 else None


class RunResult(BaseModel):
    ok: bool = Field(description="The command exited 0.")
    sid: str = Field(description="The session the command ran under.")
    sandbox: str = Field(description="`bubblewrap`, or `none` where a human passed --no-sandbox.")
    exit_code: int = Field(description="The command's exit code (128 + N for signal N).")
    renewals: int = Field(description="Lease renewals the supervisor made while it ran.")
    removed: list[str] = Field(
        default_factory=list, description="Files the command created where git reads code from, moved aside."
    )
    stopped: str | None = Field(
        default=None,
        description="Why the supervisor stopped the command: the repository was frozen, or the lease lost.",
    )


def run(
    root: Path, actor: str, command: Sequence[str], *, no_sandbox: bool = False, env: Mapping[str, str] | None = None
) -> RunResult:
    """Run `command` under this worktree's open session, in the sandbox compiled from its fence,
    renewing the session's lease while it runs (the agent cannot: the runtime is read-only to it),
    and stopping it once the lease is lost or the repository is frozen.

    Raises SESSION_NOT_FOUND without a session, FROZEN while a freeze is in force, SANDBOX_UNAVAILABLE
    without bubblewrap (a human may pass `no_sandbox`, which is audited), NOT_ALLOWED for
    `no_sandbox` from an agent."""
    from exo.kernel import GovernanceError, append_audit

    from . import authority, identity, runtime

    env = dict(os.environ if env is None else env)
    if not command:
        raise InputError("give the command to run after --", code="INVALID_ARGUMENT", hint="exo run -- codex")
    session = runtime.current(root)
    if session is None:
        raise StateError("this worktree has no open session", code="SESSION_NOT_FOUND")
    frozen = State(root).read_freeze()
    if frozen is not None:
        raise GovernanceError(f"the repository is frozen: {frozen['reason']}", code="FROZEN")
    marker = identity.agent_marker(env)
    if no_sandbox and marker:
        why = f"this process runs under an agent ({marker[0]} is set)"
        raise GovernanceError(f"only a human may run an agent without the sandbox: {why}", code="NOT_ALLOWED")
    if no_sandbox:
        authority.require_human(actor, "no_sandbox")
    bwrap = None if no_sandbox else bubblewrap()
    if bwrap is None and not no_sandbox:
        raise StateError("no OS sandbox is available here (bubblewrap, on Linux)", code="SANDBOX_UNAVAILABLE")
    kind = "none" if no_sandbox else "bubblewrap"
    with tempfile.TemporaryDirectory(prefix="exo-sandbox-") as tmp:
        temp = Path(tmp)
        if bwrap is None:
            argv = list(command)
        else:
            sandbox = dataclasses.replace(plan(root, session, temp), shadowed=key_agents(env))
            argv = sandbox.argv(bwrap, command, Path.cwd())
            for name in KEY_AGENTS:
                env.pop(name, None)
        event = "sandbox.skipped" if no_sandbox else "sandbox.started"
        append_audit(root, session.sid, event, {"by": actor, "command": Path(command[0]).name[:64]})
        env.update({MARKER: kind, "EXO_ACTOR": session.actor, "TMPDIR": tmp, "XDG_CACHE_HOME": f"{tmp}/.cache"})
        watched = [p for p in _unbindable(root) if not os.path.lexists(p)]
        aside = Path(State(root).quarantine)
        child = subprocess.Popen(argv, env=env)
        watch = _Supervision(root, session, watched, aside)
        code = watch.supervise(child)
        watch.removed += _move_aside(root, session.sid, watched, aside)
    code = 128 - code if code < 0 else code
    return RunResult(
        ok=code == 0 and not watch.removed and watch.stopped is None,
        sid=session.sid,
        sandbox=kind,
        exit_code=code,
        renewals=watch.renewals,
        removed=watch.removed,
        stopped=watch.stopped,
    )


class _Supervision:
    """What the supervisor does while the command runs: each second, move aside files that
    appeared where git reads settings, and stop the command if the repository is frozen (here, or
    on another machine: each heartbeat brings the claims remote's freeze); every third of a lease,
    renew it. A renewal that cannot reach the claims remote is retried while the lease it holds
    has not lapsed on this machine's clock; a lease lost stops the command."""

    def __init__(self, root: Path, session: OpenSession, watched: list[Path], aside: Path) -> None:
        self.root, self.session, self.watched, self.aside = root, session, watched, aside
        self.renewals = 0
        self.removed: list[str] = []
        self.stopped: str | None = None

    def supervise(self, child: subprocess.Popen[bytes]) -> int:
        from exo.kernel import ExoError, append_audit, ids

        from . import sessions

        every = min(1.0, self.session.lease.ttl_seconds / 3)
        ticks = max(1, round(self.session.lease.ttl_seconds / 3 / every))
        until = self.session.lease.expires_at
        tick = 0
        while True:
            tick += 1
            try:
                return child.wait(timeout=every)
            except subprocess.TimeoutExpired:
                self.removed += _move_aside(self.root, self.session.sid, self.watched, self.aside)
            frozen = State(self.root).read_freeze()
            if frozen is not None:
                self.stopped = f"the repository was frozen: {frozen['reason']}"
            elif tick % ticks == 0:
                try:
                    until = sessions.heartbeat(self.root, self.session.actor).expires_at
                    self.renewals += 1
                except ExoError as exc:
                    if exc.code != "REMOTE_UNREACHABLE" or until <= ids.moment(None):
                        self.stopped = f"the lease was lost: {exc.message}"
            if self.stopped is not None:  # the holder may not go on writing
                append_audit(self.root, self.session.sid, "sandbox.stopped", {"why": self.stopped[:200]})
                child.terminate()
                return child.wait()


def _unbindable(root: Path) -> list[Path]:
    """Files git reads settings from that the sandbox cannot bind read-only while they do not
    exist (a bind needs something to bind over), in directories it must leave writable."""
    common, own = git_common_dir(root).resolve(), worktree_git_dir(root).resolve()
    return [common / "commondir", common / "config.worktree", own / "commondir", own / "config.worktree"]


def _move_aside(root: Path, sid: str, watched: list[Path], aside: Path) -> list[str]:
    """Move any watched file that appeared out of git's way (into `aside`, in the runtime directory
    found before the command ran: the file may redirect where git, and exo, look) and audit it."""
    from exo.kernel import append_audit

    moved = []
    for path in watched:
        if not os.path.lexists(path):
            continue
        aside.mkdir(parents=True, exist_ok=True)
        target = aside / f"{path.name}-{secrets.token_hex(6)}"
        os.replace(path, target)
        moved.append(str(path))
        append_audit(root, sid, "sandbox.intrusion", {"path": str(path)[-200:], "moved_to": target.name})
    return moved
