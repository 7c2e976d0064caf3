"""The compiled rules, typed: each rule of the governance lock read back as the compiler's model.

The lock stores its rules as normalized JSON, which the hook paths read as they are (the fence and
the git hooks never pay for pydantic). Everywhere else reads them through here, so a rule is one of
the models in `Rule`: a type this exo does not know is refused (GOVERNANCE_STALE), never taken for
another rule, and mypy holds each `match` over `Rule` to every type.
"""

from __future__ import annotations

from typing import TypeVar, get_args

from pydantic import BaseModel, ValidationError

from exo.kernel import (
    ActorTierRule,
    ApprovalRule,
    BudgetRule,
    CommitPolicyRule,
    ErrorBudgetRule,
    FilesystemAllowRule,
    FilesystemDenyRule,
    Governance,
    GovernanceError,
    RequireChecksRule,
    SignaturesRule,
)
from exo.kernel.layout import LOCK

Rule = (
    FilesystemDenyRule
    | FilesystemAllowRule
    | RequireChecksRule
    | BudgetRule
    | CommitPolicyRule
    | SignaturesRule
    | ApprovalRule
    | ActorTierRule
    | ErrorBudgetRule
)
MODELS: dict[str, type[Rule]] = {get_args(m.model_fields["type"].annotation)[0]: m for m in get_args(Rule)}
_COMPILED = ("line", "compiled")  # what the compiler adds to a rule: where it was, and its matchers

R = TypeVar("R", bound=BaseModel)


def typed(gov: Governance) -> list[Rule]:
    """Every rule of the lock, in order, as its model (GOVERNANCE_STALE for a rule this exo cannot read)."""
    out = []
    for rule in gov.rules:
        model = MODELS.get(str(rule.get("type")))
        try:
            if model is None:
                raise ValueError(f"unknown rule type {rule.get('type')!r}")
            out.append(model.model_validate({k: v for k, v in rule.items() if k not in _COMPILED}))
        except (ValueError, ValidationError) as exc:
            raise GovernanceError(
                f"{LOCK}: rule {rule.get('id')!r} is not a rule this exo reads: {str(exc).splitlines()[0]}",
                code="GOVERNANCE_STALE",
                hint="compile the constitution with this exo: `exo build-governance`",
            ) from None
    return out


def of(gov: Governance, kind: type[R]) -> list[R]:
    """The rules of one type, in order."""
    return [rule for rule in typed(gov) if isinstance(rule, kind)]


def first(gov: Governance, kind: type[R]) -> R | None:
    """The rule of a type the constitution holds at most once (budget, signatures, approval …)."""
    return next(iter(of(gov, kind)), None)
