"""The compiled governance lock and its loader: the hot path's only view of the constitution.

This module and `_fence` import nothing outside the standard library (SPEC §10: hooks must not pay
for pydantic, pathspec or filelock); the lock's own hash guards the compiled form they trust.
"""

from __future__ import annotations

import json
import os
import re

from ._errors import GovernanceError, StateError
from ._patterns import Matcher
from ._record import Frozen
from .canon import canonical, sha256_hex
from .layout import CONSTITUTION, LOCK
from .safe import read_regular
from .state import State

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOCK_FORMAT = 1


class PathRule(Frozen):
    """A compiled filesystem_deny or filesystem_allow rule."""

    __slots__ = _fields = ("id", "type", "match", "actors", "actions", "description")
    id: str
    type: str
    match: Matcher
    actors: re.Pattern[str]
    actions: frozenset[str]
    description: str

    def __init__(
        self, id: str, type: str, match: Matcher, actors: re.Pattern[str], actions: frozenset[str], description: str
    ) -> None:
        self._set(id=id, type=type, match=match, actors=actors, actions=actions, description=description)


class Governance(Frozen):
    """Compiled, hash-checked rules of one worktree, as `load_governance` returns them.

    `rules` holds the normalized rules exactly as the lock stores them (for display and for the
    stdlib's budget, checks and commit policy); `deny` and `allow` are their compiled path rules.
    """

    __slots__ = (
        "allow",
        "deny",
        "frozen",
        "kernel_version",
        "lock_sha256",
        "root",
        "root_real",
        "rules",
        "source_sha256",
        "tiers",
    )
    _fields = ("root", "source_sha256", "lock_sha256", "kernel_version")
    root: str
    source_sha256: str
    lock_sha256: str
    kernel_version: str
    rules: tuple[dict[str, Any], ...]
    deny: tuple[PathRule, ...]
    allow: tuple[PathRule, ...]
    root_real: str
    frozen: str | None  # the freeze reason while `exo freeze` is in force: every fence check denies
    tiers: tuple[tuple[str, re.Pattern[str], str], ...]  # (rule id, actor pattern, tier), first match decides

    def __init__(
        self,
        root: str,
        source_sha256: str,
        lock_sha256: str,
        kernel_version: str,
        rules: tuple[dict[str, Any], ...],
        deny: tuple[PathRule, ...] = (),
        allow: tuple[PathRule, ...] = (),
        frozen: str | None = None,
        tiers: tuple[tuple[str, re.Pattern[str], str], ...] = (),
    ) -> None:
        self._set(
            frozen=frozen,
            tiers=tiers,
            root=root,
            source_sha256=source_sha256,
            lock_sha256=lock_sha256,
            kernel_version=kernel_version,
            rules=rules,
            deny=deny,
            allow=allow,
            root_real=os.path.realpath(root),
        )

    def rules_of(self, rule_type: str) -> list[dict[str, Any]]:
        return [rule for rule in self.rules if rule["type"] == rule_type]

    def tier(self, actor: str) -> tuple[str, str] | None:
        """(tier, rule id) of `actor` under the actor_tier rule, or None (no rule or no match: scoped)."""
        for rule_id, actors, tier in self.tiers:
            if actors.fullmatch(actor):
                return tier, rule_id
        return None


def lock_digest(doc: dict[str, Any]) -> str:
    """The lock's self-hash: sha256 of its canonical JSON without the `sha256` field."""
    return sha256_hex(canonical({k: v for k, v in doc.items() if k != "sha256"}))


def load_governance(root: str | os.PathLike[str]) -> Governance:
    """Load `.exo/governance.lock.json` of the worktree at `root` and check it is current.

    Raises GovernanceError with GOVERNANCE_MISSING (no lock), GOVERNANCE_TAMPERED (the lock does not
    match its own hash or is not a lock), GOVERNANCE_STALE (the constitution changed since it was
    compiled, or the lock format is not this kernel's) or CONSTITUTION_MISSING.
    """
    base = os.path.abspath(root)
    try:
        raw = read_regular(os.path.join(base, LOCK))
    except FileNotFoundError:
        raise GovernanceError(f"{LOCK} not found in {base}", code="GOVERNANCE_MISSING") from None
    except OSError as exc:
        raise GovernanceError(f"cannot read {LOCK}: {exc.strerror}", code="GOVERNANCE_MISSING") from exc
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        if doc.get("sha256") != lock_digest(doc):
            raise GovernanceError(f"{LOCK} does not match its own hash", code="GOVERNANCE_TAMPERED")
        if doc.get("format") != LOCK_FORMAT:
            raise GovernanceError(
                f"{LOCK} has format {doc.get('format')!r}, this exo reads format {LOCK_FORMAT}",
                code="GOVERNANCE_STALE",
            )
        return _from_doc(base, doc, _source_sha256(base))
    except GovernanceError:
        raise
    except (ValueError, KeyError, TypeError, re.error, RecursionError) as exc:
        raise GovernanceError(f"{LOCK} is not a valid governance lock: {exc}", code="GOVERNANCE_TAMPERED") from exc


def _source_sha256(base: str) -> str:
    try:
        return sha256_hex(read_regular(os.path.join(base, CONSTITUTION)))
    except FileNotFoundError:
        raise GovernanceError(f"{CONSTITUTION} not found", code="CONSTITUTION_MISSING") from None
    except OSError as exc:
        raise GovernanceError(f"cannot read {CONSTITUTION}: {exc.strerror}", code="CONSTITUTION_MISSING") from exc


def _from_doc(base: str | os.PathLike[str], doc: dict[str, Any], source_sha: str) -> Governance:
    if doc["source_sha256"] != source_sha:
        raise GovernanceError(f"{CONSTITUTION} changed since {LOCK} was compiled", code="GOVERNANCE_STALE")
    rules = tuple(doc["rules"])
    deny: list[PathRule] = []
    allow: list[PathRule] = []
    tiers = tuple(
        (rule["id"], re.compile(actors), tier)
        for rule in rules
        if rule["type"] == "actor_tier"
        for actors, tier in rule["compiled"]
    )
    for rule in rules:
        if rule["type"] in ("filesystem_deny", "filesystem_allow"):
            compiled = rule["compiled"]
            deny_rule = rule["type"] == "filesystem_deny"
            path_rule = PathRule(
                id=rule["id"],
                type=rule["type"],
                # Deny rules match case-insensitively: on case-insensitive disks SECRETS/x is secrets/x.
                match=Matcher(compiled["patterns"], ignore_case=deny_rule),
                actors=re.compile(compiled["actors"]),
                actions=frozenset(rule.get("actions", ("write", "delete"))),
                description=rule.get("description", ""),
            )
            (deny if deny_rule else allow).append(path_rule)
    return Governance(
        root=os.fspath(base),
        source_sha256=source_sha,
        lock_sha256=doc["sha256"],
        kernel_version=doc["kernel_version"],
        rules=rules,
        deny=tuple(deny),
        allow=tuple(allow),
        frozen=_freeze_reason(os.fspath(base)),
        tiers=tiers,
    )


def _freeze_reason(root: str) -> str | None:
    """The reason of a freeze in force (runtime state under the git common dir), or None."""
    try:
        freeze = State(root).read_freeze()
    except StateError:
        return None  # not a git worktree: there is no runtime state, so no freeze
    return None if freeze is None else freeze["reason"]
