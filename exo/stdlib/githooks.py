"""Git hooks: `exo hook git pre-commit` (fence and commit policy over staged paths) and
`exo hook git prepare-commit-msg` (trailers, and a `commit.prepared` audit record binding them to
the commit's tree and parents). prepare-commit-msg runs even under `--no-verify`, so a commit that
bypassed pre-commit is still stamped, and CI can tell it apart.
"""

from __future__ import annotations

import os
import re

from exo.kernel import Action, Governance, check_action, ids, load_governance

from . import git
from .hooks import Denied, Session, live_lease, open_session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import TextIO

DEFAULT_POLICY = {"require_session": True, "exempt_actors": ["human:*"]}
CLOSEOUT_ENV = "EXO_CLOSEOUT"  # set by exo for its own closeout commit, which carries its trailers


def commit_policy(gov: Governance) -> dict[str, object]:
    rules = gov.rules_of("commit_policy")
    return rules[0] if rules else DEFAULT_POLICY


def exempt(actor: str, patterns: object) -> bool:
    if not isinstance(patterns, list) or not patterns:
        return False
    return re.fullmatch(ids.actor_patterns_regex([str(p) for p in patterns]), actor) is not None


def staged(root: str) -> list[tuple[str, str]]:
    """(operation, path) for every staged change, from the index git is committing (GIT_INDEX_FILE)."""
    return git.name_status(root, "diff", "--cached")


def check_staged(root: str, actor: str | None) -> list[str]:
    """Problems with committing the staged changes now (empty: the commit may proceed).

    An open session in this worktree fences the staged paths; without one, the commit policy
    decides whether the actor may commit at all.
    """
    gov = load_governance(root)
    session = open_session(root)
    who = actor or (session.actor if session else "human:unknown")
    if session is None:
        policy = commit_policy(gov)
        if policy.get("require_session", True) and not exempt(who, policy.get("exempt_actors", [])):
            return [f"{who} has no open exo session: agents commit only inside one (`exo session-start`)"]
        return []
    live_lease(session)
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


def tree_and_parents(root: str, source: str, amend_of: str) -> tuple[str, list[str]]:
    """The tree being committed (from the index in use) and the commit's parents."""
    tree = git.run(root, "write-tree")
    # git passes `commit HEAD` for --amend, and `commit <as typed>` for -c/-C <commit>: only an
    # amend replaces HEAD, so only then are the parents HEAD's parents.
    if source == "commit" and amend_of == "HEAD":
        parents = git.run(root, "rev-parse", "HEAD^@").split()
    else:
        head = git.run(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
        parents = [head] if head else []
        merge_head = os.path.join(root, git.run(root, "rev-parse", "--git-dir"), "MERGE_HEAD")
        if os.path.exists(merge_head):  # a merge commit: MERGE_HEAD names the other parents
            with open(merge_head, encoding="utf-8") as fh:
                parents += fh.read().split()
    return tree, parents


def prepare_commit_msg(root: str, actor: str | None, argv: list[str], env: Mapping[str, str]) -> int:
    """Stamp the message with Exo-* trailers (and record `commit.prepared` for a session commit)."""
    if not argv:
        raise Denied("prepare-commit-msg needs the message file")
    if env.get(CLOSEOUT_ENV):
        return 0
    message_file = argv[0]
    source = argv[1] if len(argv) > 1 else ""
    amend_of = argv[2] if len(argv) > 2 else ""
    session = open_session(root)
    who = actor or (session.actor if session else _human(root))
    trailers = {"Exo-Actor": who}
    if session is not None:
        trailers.update(_prepared(root, session, who, source, amend_of))
    args = ["interpret-trailers", "--in-place", "--if-exists", "replace"]
    for key, value in trailers.items():
        args += ["--trailer", f"{key}: {value}"]
    git.run(root, *args, message_file)
    return 0


def _prepared(root: str, session: Session, actor: str, source: str, amend_of: str) -> dict[str, str]:
    from exo.kernel import append_audit

    tree, parents = tree_and_parents(root, source, amend_of)
    record = append_audit(
        root,
        session.sid,
        "commit.prepared",
        {"tree": tree, "parents": parents, "actor": actor, "ticket_id": session.ticket_id},
    )
    return {"Exo-Session": session.sid, "Exo-Ticket": session.ticket_id, "Exo-Audit": f"{record.seq}:{record.h}"}


def _human(root: str) -> str:
    email = re.sub(r"[^A-Za-z0-9._@+=~-]", "-", git.config_value(root, "user.email") or "")[:128]
    return "human:" + (email or "unknown")


def run(argv: list[str], cwd: str, actor: str | None, env: Mapping[str, str], err: TextIO) -> int:
    """`exo hook git EVENT ARGS...`: exit status for git (non-zero aborts the commit)."""
    from .hooks import find_root

    try:
        root = find_root(cwd)
        if root is None:
            raise Denied(f"{cwd} is not inside a git worktree")
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
