"""Building the governance lock and asking the fence about paths (`exo build-governance`, `exo check`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from exo.kernel import (
    Action,
    ExoError,
    Fence,
    GovernanceError,
    InputError,
    check_action,
    compile_constitution,
    load_governance,
)
from exo.kernel.fs import atomic_write, read_file
from exo.kernel.layout import LOCK

from . import authority, events, runtime, signing
from .config import load_config
from .keys import Key


class RuleSummary(BaseModel):
    id: str = Field(description="Rule id.")
    type: str = Field(description="Rule type.")
    line: int = Field(description="Line of the rule's block in CONSTITUTION.md.")


class BuildResult(BaseModel):
    """Outcome of compiling the constitution."""

    lock: str = Field(description="Path of the compiled lock, repo-relative.")
    source_sha256: str = Field(description="sha256 of CONSTITUTION.md the lock pins.")
    lock_sha256: str = Field(description="The lock's own hash.")
    changed: bool = Field(description="Whether the lock was rewritten.")
    rules: list[RuleSummary] = Field(description="Compiled rules in source order.")


class PathDecision(BaseModel):
    path: str = Field(description="Canonical repo-relative path (or the input, if it has none).")
    allowed: bool = Field(description="Whether the fence allows the operation.")
    rule: str | None = Field(description="Deciding rule id (`exo:*` for built-in rules), null when allowed.")
    reason: str = Field(description="Why, for humans and agents.")


class CheckResult(BaseModel):
    """The fence's decision for each path; `ok` only if every path is allowed."""

    ok: bool = Field(description="True when every path is allowed.")
    actor: str = Field(description="Actor the check was made for.")
    operation: str = Field(description="read, write or delete.")
    scope: list[str] = Field(description="Allow globs of the fence used.")
    decisions: list[PathDecision] = Field(description="One decision per path, in input order.")


def build(root: Path, actor: str | None = None) -> BuildResult:
    """Validate config and compile the constitution; record the compile when the lock changes.

    Changing the constitution is a human act: where the signatures rule (before or after the change)
    requires human acts signed, the `governance.compiled` event is signed with `actor`'s key, and an
    agent is refused. Raises GovernanceError (CONFIG_INVALID, CONSTITUTION_MISSING,
    CONSTITUTION_INVALID, NOT_ALLOWED, SIGNING_KEY_MISSING, SIGNING_FAILED); a failed build leaves
    the previous lock as it was.
    """
    load_config(root)
    try:
        old = load_governance(root)
        before, required = old.lock_sha256, signing.required(old, "human_acts")
    except ExoError:
        before, required = None, False
    previous = read_file(root / LOCK)
    gov = compile_constitution(root)
    changed = before != gov.lock_sha256
    if changed:
        data = {"source_sha256": gov.source_sha256, "lock_sha256": gov.lock_sha256, "rules": len(gov.rules)}
        required = required or signing.required(gov, "human_acts")
        try:
            signer = _signer(root, actor, required)
            events.record(root, "governance.compiled", {**data, "actor": actor or ""}, signer=signer)
        except ExoError:
            if previous is not None:
                atomic_write(root / LOCK, previous)  # an act that cannot be recorded did not happen
            raise
    return BuildResult(
        lock=LOCK,
        source_sha256=gov.source_sha256,
        lock_sha256=gov.lock_sha256,
        changed=changed,
        rules=[RuleSummary(id=r["id"], type=r["type"], line=r["line"]) for r in gov.rules],
    )


def _signer(root: Path, actor: str | None, required: bool) -> Key | None:
    """The key that signs a compile: a human's where required (an agent is refused), else a human's
    if git has one, else none."""
    if actor is None or (not required and not authority.is_human(actor)):
        return None
    return authority.human_act(root, actor, "constitution", always_signed=required)


def check_staged(root: Path, actor: str, *, scope: list[str], deny: list[str]) -> CheckResult:
    """`check_paths` over the paths staged for commit (from the index git uses: GIT_INDEX_FILE)."""
    from .githooks import staged

    paths = [path for _, path in staged(str(root))]
    if not paths:
        return CheckResult(ok=True, actor=actor, operation="write", scope=scope, decisions=[])
    return check_paths(root, actor, paths, scope=scope, deny=deny)


def check_paths(
    root: Path, actor: str, paths: list[str], *, scope: list[str], deny: list[str], operation: str = "write"
) -> CheckResult:
    """Decide each path against the governance lock and a fence: the one built from `scope`/`deny`
    globs if given, else the open session's pinned fence.

    Raises InputError (INVALID_ARGUMENT, INVALID_PATTERN), GovernanceError (GOVERNANCE_MISSING,
    GOVERNANCE_STALE, GOVERNANCE_TAMPERED) and NO_SESSION when no scope is given.
    """
    if not paths:
        raise InputError("no paths to check", code="INVALID_ARGUMENT", hint="exo check --paths PATH [PATH ...]")
    if scope:
        fence = Fence.from_globs(scope, deny)
    else:
        session = runtime.current(root)
        if session is None:
            raise GovernanceError(
                "no open session and no --scope: there is no fence to check against",
                code="NO_SESSION",
                hint="pass --scope GLOB (e.g. --scope 'src/**') or start a session",
            )
        fence = runtime.fence_of(session)
    gov = load_governance(root)
    decisions = [check_action(gov, fence, Action(actor, operation, path)) for path in paths]
    return CheckResult(
        ok=all(d.allowed for d in decisions),
        actor=actor,
        operation=operation,
        scope=list(fence.allow_globs),
        decisions=[PathDecision(**d.to_dict()) for d in decisions],
    )
