"""Git hooks: `exo hook git pre-commit` (fence and commit policy over staged paths) and
`exo hook git prepare-commit-msg` (trailers, and a `commit.prepared` audit record binding them to
the commit's tree and parents). prepare-commit-msg runs even under `--no-verify`, so a commit that
bypassed pre-commit is still stamped, and CI can tell it apart.
"""

from __future__ import annotations

import errno
import os
import re

from exo.kernel import Action, Governance, check_action, ids, load_governance
from exo.kernel.gitdir import git_dir

from . import git, identity
from .hooks import Denied, Session, live_lease, open_session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

DEFAULT_POLICY = {"require_session": True, "exempt_actors": ["human:*"]}
CLOSEOUT_ENV = "EXO_CLOSEOUT"  # set by exo for its own closeout commit, which carries its trailers


READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)  # a write the sandbox refuses


def commit_policy(gov: Governance) -> dict[str, object]:
    rules = gov.rules_of("commit_policy")
    return rules[0] if rules else DEFAULT_POLICY


def exempt(actor: str, patterns: object) -> bool:
    if not isinstance(patterns, list) or not patterns:
        return False
    return re.fullmatch(ids.actor_patterns_regex([str(p) for p in patterns]), actor) is not None


def exempt_commit(trailers: dict[str, str], policy: dict[str, object]) -> bool:
    """Whether a commit is stamped by an actor the commit policy lets commit without a session
    (by default a human), outside any session: its content is that actor's change."""
    actor = trailers.get("Exo-Actor")
    if actor is None or "Exo-Session" in trailers or not ids.ACTOR_RE.fullmatch(actor):
        return False
    return not policy.get("require_session", True) or exempt(actor, policy.get("exempt_actors", []))


def staged(root: str) -> list[tuple[str, str]]:
    """(operation, path) for every staged change, from the index git is committing (GIT_INDEX_FILE)."""
    return git.name_status(root, "diff", "--cached")


def check_staged(root: str, actor: str | None) -> list[str]:
    """Problems with committing the staged changes now (empty: the commit may proceed).

    An open session in this worktree fences the staged paths; without one, the commit policy
    decides whether the actor may commit at all (on a branch without exo at all, the default one).
    """
    session = open_session(root)
    who = actor or (session.actor if session else "human:unknown")
    if session is None:
        exo_here = os.path.isdir(os.path.join(root, ".exo"))
        policy = commit_policy(load_governance(root)) if exo_here else DEFAULT_POLICY
        if policy.get("require_session", True) and not exempt(who, policy.get("exempt_actors", [])):
            return [f"{who} has no open exo session: agents commit only inside one (`exo session-start`)"]
        return []
    live_lease(session)
    gov = load_governance(root)
    problems = []
    for operation, path in staged(root):
        decision = check_action(gov, session.fence, Action(session.actor, operation, path))
        if not decision.allowed:
            problems.append(f"{path}: [{decision.rule}] {decision.reason}")
    return problems


def pre_commit(root: str, actor: str | None, err: TextIO) -> int:
    problems = check_staged(root, actor)
    if not problems:
        return 0
    lines = [f"error[DRIFT]: this commit breaks the exo fence ({len(problems)} path(s)):"]
    lines += [f"  {p}" for p in problems]
    lines.append("hint: unstage those paths (`git restore --staged PATH`), or finish the session first")
    print("\n".join(lines), file=err)
    return 1


STAMPS = ("Exo-Session", "Exo-Ticket", "Exo-Audit")  # what says a commit belongs to a session
_STAMP_LINE = re.compile(r"(?:Exo-Actor|Exo-Session|Exo-Ticket|Exo-Audit|Exo-Policy|Exo-Claim)\s*:.*")
_CLAIM = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,63})@([1-9][0-9]{0,17})")


def claim_stamp(ticket_id: str, epoch: int) -> str:
    """The `Exo-Claim` value of a commit made under epoch `epoch` of the claim on `ticket_id`."""
    return f"{ticket_id}@{epoch}"


def claim_of(value: str) -> tuple[str, int] | None:
    """(ticket, epoch) of an `Exo-Claim` value, or None for one that is not `TICKET@EPOCH`."""
    match = _CLAIM.fullmatch(value)
    return (match.group(1), int(match.group(2))) if match else None


def prepare_commit_msg(root: str, actor: str | None, argv: list[str], env: Mapping[str, str]) -> int:
    """Stamp the message with Exo-* trailers (and record `commit.prepared` for a session commit).

    A commit replayed by a rebase keeps the stamp it had (rebasing someone's commits does not make
    them yours), except that the open session's own commits are stamped again for their new tree.
    Any other commit is stamped afresh for who makes it now: a message reused from another commit
    (`-c`, `-C`, `--amend`, cherry-pick) loses session trailers that are not this commit's.
    """
    if not argv:
        raise Denied("prepare-commit-msg needs the message file")
    if env.get(CLOSEOUT_ENV):
        return 0
    message_file = argv[0]
    # The pre-commit framework passes only the file; git's other arguments arrive in its variables.
    source = argv[1] if len(argv) > 1 else env.get("PRE_COMMIT_COMMIT_MSG_SOURCE", "")
    with open(message_file, encoding="utf-8", errors="surrogateescape") as fh:
        message = fh.read()
    stamped = _stamp_of(message)
    session = open_session(root)
    who = actor or (session.actor if session else identity.git_user(root))
    if _rebasing(root) and "Exo-Actor" in stamped:
        if session is None or stamped.get("Exo-Session") != session.sid:
            return 0
        who = stamped["Exo-Actor"]
    policy = str(session.doc.get("governance_sha256", "")) if session is not None else _lock_sha256(root)
    trailers = {"Exo-Policy": policy} if policy else {}
    trailers["Exo-Actor"] = who
    if session is not None and who == session.actor:
        trailers.update(_prepared(root, session, who, source))
    _write_stamped(root, message_file, message, trailers)
    return 0


def _lock_sha256(root: str) -> str:
    """The hash of the governance lock in force here (the policy the commit was made under), or ""."""
    import json

    from exo.kernel.layout import LOCK
    from exo.kernel.safe import read_regular

    try:
        doc = json.loads(read_regular(os.path.join(root, LOCK)))
    except (OSError, ValueError, RecursionError):
        return ""
    digest = doc.get("sha256") if isinstance(doc, dict) else None
    return digest if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) else ""


def _trailer_block(lines: list[str]) -> range:
    """Indexes of the message's last paragraph, where git looks for trailers (comments ignored)."""
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    start = end
    while start and lines[start - 1].strip() and not lines[start - 1].startswith("#"):
        start -= 1
    return range(start, end)


def _stamp_of(message: str) -> dict[str, str]:
    """The Exo-* trailers the message carries."""
    lines = message.splitlines()
    found: dict[str, str] = {}
    for i in _trailer_block(lines):
        key, sep, value = lines[i].partition(":")
        if sep and key.strip().startswith("Exo-"):
            found[key.strip()] = value.strip()
    return found


def _rebasing(root: str) -> bool:
    """Whether git is replaying commits here (a rebase of either backend)."""
    own = git_dir(root)
    return os.path.isdir(os.path.join(own, "rebase-merge")) or os.path.isdir(os.path.join(own, "rebase-apply"))


def _write_stamped(root: str, message_file: str, message: str, trailers: dict[str, str]) -> None:
    """Replace the message's Exo-* trailers with `trailers`, after a blank line whatever git passed
    (a merge message has no final newline; a user's trailer config must not move or rename ours)."""
    lines = message.splitlines()
    block = _trailer_block(lines)
    kept = [line for i, line in enumerate(lines) if not (i in block and _STAMP_LINE.fullmatch(line))]
    with open(message_file, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write("\n".join(kept).rstrip("\n") + "\n")
    args = ["-c", "trailer.separators=:", "interpret-trailers", "--in-place", "--where", "end"]
    args += ["--if-exists", "replace", "--if-missing", "add"]
    for key, value in trailers.items():
        args += ["--trailer", f"{key}: {value}"]
    git.run(root, *args, "--", message_file)


def _prepared(root: str, session: Session, actor: str, source: str) -> dict[str, str]:
    from exo.kernel import append_audit

    tree = git.run(root, "write-tree")  # the tree being committed, from the index in use
    head = git.run(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
    stamp = {"Exo-Session": session.sid, "Exo-Ticket": session.ticket_id}
    epoch = session.doc.get("lease", {}).get("epoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        stamp["Exo-Claim"] = claim_stamp(session.ticket_id, epoch)
    try:
        record = append_audit(
            root,
            session.sid,
            "commit.prepared",
            {"tree": tree, "head": head, "source": source, "actor": actor, "ticket_id": session.ticket_id},
        )
    except OSError as exc:
        if exc.errno not in READ_ONLY:
            raise
        return stamp  # inside the agent's sandbox the runtime is read-only: finish derives its commits
    return {**stamp, "Exo-Audit": f"{record.seq}:{record.h}"}


def _hook_actor(root: str, actor: str | None, env: Mapping[str, str]) -> str | None:
    """The committer named by --actor/EXO_ACTOR (refused if it is a human's name under an agent's
    marker); under a marker with no session open, the harness's agent rather than the git user;
    else None (the session's actor, or the git user)."""
    if actor:
        return identity.actor(actor, env, lambda: "")
    marker = identity.agent_marker(env)
    if marker is not None and open_session(root) is None:
        return identity.actor(None, env, lambda: "")
    return None


def run(argv: list[str], cwd: str, actor: str | None, env: Mapping[str, str], err: TextIO) -> int:
    """`exo hook git EVENT ARGS...`: exit status for git (non-zero aborts the commit)."""
    from .hooks import find_root

    try:
        root = find_root(cwd)
        if root is None:
            raise Denied(f"{cwd} is not inside a git worktree")
        actor = _hook_actor(root, actor, env)
        event, rest = (argv[0], argv[1:]) if argv else ("", [])
        if event == "pre-commit":
            return pre_commit(root, actor, err)
        if event == "prepare-commit-msg":
            return prepare_commit_msg(root, actor, rest, env)
        raise Denied(f"unknown git hook {event!r} (pre-commit, prepare-commit-msg)")
    except Denied as exc:
        print(f"error[DRIFT]: exo: {exc}", file=err)
        return 1
    except Exception as exc:  # fail closed: an exo hook that crashes refuses the commit
        code = getattr(exc, "code", "INTERNAL")
        print(f"error[{code}]: exo {argv[0] if argv else ''} hook: {exc}", file=err)
        hint = getattr(exc, "hint", "rerun the commit; report it if it persists")
        print(f"hint: {hint}", file=err)
        return 1
