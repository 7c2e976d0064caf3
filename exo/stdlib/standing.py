"""Error budgets (SPEC §14): refused finishes and fence violations per actor, and revocation.

Under the `error_budget` rule, every refused finish and every write the agent hook denies counts
against the actor. One past either limit, the actor is revoked: it may not claim a ticket or start
a session until a human restores it (`exo restore ACTOR`, a human act recorded as an
`actor.restored` event, signed where the constitution asks). Counts live in the clone's runtime
directory (`standing.json`), next to its leases; revocation and restoration are audited.
Standard library only: the agent hook counts a denial on its own hot path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exo.kernel import ErrorBudgetRule, Governance, GovernanceError, append_audit, ids
from exo.kernel.fs import file_lock
from exo.kernel.state import State, read_doc, write_doc

from . import rules

KINDS = {"refused_finishes": "max_refused_finishes", "fence_violations": "max_fence_violations"}
LOCAL = "local"  # the clone's own audit stream (never committed)


def rule_for(gov: Governance, actor: str) -> ErrorBudgetRule | None:
    """The error_budget rule that applies to `actor`, if any."""
    for rule in rules.of(gov, ErrorBudgetRule):
        if re.fullmatch(ids.actor_patterns_regex(rule.actors), actor):
            return rule
    return None


def note(root: Path, gov: Governance, actor: str, kind: str) -> None:
    """Count one refused finish or fence violation against `actor`; revoke it one past its budget."""
    rule = rule_for(gov, actor)
    if rule is None:
        return
    path = State(root).standing
    with file_lock(root, path):
        doc = read_doc(path) or {}
        entry = doc.setdefault(actor, {key: 0 for key in KINDS})
        entry[kind] = int(entry.get(kind, 0)) + 1
        limit = getattr(rule, KINDS[kind])
        newly = limit is not None and entry[kind] > limit and not entry.get("revoked_at")
        if newly:
            entry["revoked_at"] = datetime.now(UTC).isoformat()
            entry["why"] = f"{entry[kind]} {kind.replace('_', ' ')} (budget {limit}, rule {rule.id})"
        write_doc(path, doc)
    if newly:
        append_audit(root, LOCAL, "actor.revoked", {"actor": actor, "why": entry["why"]})


def require_standing(root: Path, actor: str) -> None:
    """GovernanceError(ACTOR_REVOKED) if `actor` is revoked in this clone."""
    entry = standings(root).get(actor)
    if entry and entry.get("revoked_at"):
        raise GovernanceError(
            f"{actor} is revoked: {entry.get('why', 'over its error budget')}",
            code="ACTOR_REVOKED",
            hint=f"a human looks at what went wrong, then runs `exo restore {actor}`",
        )


def standings(root: Path) -> dict[str, dict[str, Any]]:
    """actor -> counts (and `revoked_at`, `why` once revoked)."""
    doc = read_doc(State(root).standing) or {}
    return {k: v for k, v in doc.items() if isinstance(v, dict)}


def restore(root: Path, human: str, actor: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Restore a revoked actor (its counts start again from zero): a human act, recorded as a signed
    `actor.restored` event. Raises NOT_ALLOWED, SIGNING_KEY_MISSING, INVALID_ARGUMENT (not revoked)."""
    from exo.kernel import InputError

    from . import authority, events

    signer = authority.human_act(root, human, "restore")
    path = State(root).standing
    with file_lock(root, path):
        doc = read_doc(path) or {}
        entry = doc.get(ids.actor(actor))
        if not isinstance(entry, dict) or not entry.get("revoked_at"):
            raise InputError(f"{actor} is not revoked", code="INVALID_ARGUMENT", hint="`exo status` lists who is")
        data = {"actor": human, "restored": actor, "why": str(entry.get("why", ""))}
        events.record(root, "actor.restored", data, now=now, signer=signer)
        fresh: dict[str, Any] = {key: 0 for key in KINDS}
        doc[actor] = fresh
        write_doc(path, doc)
    return fresh
