"""The `approval` rule: who may close a ticket as done, and agents' tickets waiting for a human (SPEC §14).

Without the rule, anyone may set any status and every ticket starts as `todo`. With it, only an
approver (by default a human) sets `done` — everyone else reaches `review` — and a ticket an agent
creates, or whose scope, budget or checks an agent changes, is `proposed`: `exo next` passes it by
and a session cannot start on it until a human approves it (`exo ticket approve`, a signed act
where the constitution asks for signed human acts).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from exo.kernel import ApprovalRule, Governance, GovernanceError, ids

from . import authority, rules

WIDENING = ("scope", "budget", "checks")  # fields whose change by an agent sends a ticket back to proposed


def rule(gov: Governance) -> ApprovalRule | None:
    return rules.first(gov, ApprovalRule)


def proposes(gov: Governance, actor: str) -> bool:
    """Whether what `actor` creates or widens waits for a human's approval."""
    found = rule(gov)
    return found is not None and found.proposals and not authority.is_human(actor)


def require_approver(gov: Governance, actor: str) -> None:
    """GovernanceError(NOT_ALLOWED) unless `actor` may set a ticket done."""
    found = rule(gov)
    if found is None:
        return
    patterns = found.approvers
    if re.fullmatch(ids.actor_patterns_regex(patterns), actor) is None:
        raise GovernanceError(
            f"{actor} may not set a ticket done: the approval rule lets only {', '.join(patterns)}",
            code="NOT_ALLOWED",
            hint="finish with status review (the default); an approver sets it done",
        )


def scope_sha256(scope: dict[str, Any], budget: dict[str, Any], checks: list[str]) -> str:
    """What an approval approves: the ticket's scope, budget and checks, hashed canonically."""
    doc = {"scope": scope, "budget": budget, "checks": checks}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
