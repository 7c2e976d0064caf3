"""The frozen kernel: exactly ten functions (constitution, ticket locks, audit log), their models and errors.

The facade is lazy (PEP 562): `from exo.kernel import check_action` loads only the fence, which is
standard-library code, so agent hooks never pay for pydantic. Changing `FUNCTIONS` is a versioned,
documented event (docs/kernel.md); a test pins it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a hook ~9 ms; mypy honours the name
if TYPE_CHECKING:
    from typing import Any

    from ._audit import (
        Anchor,
        AuditProblem,
        AuditRecord,
        AuditReport,
        StreamReport,
        append_audit,
        seal_audit,
        verify_audit,
    )
    from ._constitution import (
        ActorTierRule,
        ApprovalRule,
        BudgetRule,
        CommitPolicyRule,
        ErrorBudgetRule,
        FilesystemAllowRule,
        FilesystemDenyRule,
        RequireChecksRule,
        SignaturesRule,
        TierEntry,
        compile_constitution,
    )
    from ._errors import (
        CODES,
        AuditError,
        ExoError,
        GovernanceError,
        InputError,
        LockError,
        StateError,
    )
    from ._fence import Action, Decision, Fence, check_action
    from ._governance import Governance, load_governance
    from ._locks import (
        Lease,
        LeaseStore,
        LocalLeaseStore,
        acquire_lock,
        inspect_lock,
        release_lock,
        renew_lock,
    )

FUNCTIONS = (
    "compile_constitution",
    "load_governance",
    "check_action",
    "acquire_lock",
    "renew_lock",
    "release_lock",
    "inspect_lock",
    "append_audit",
    "seal_audit",
    "verify_audit",
)

_HOME = {
    "compile_constitution": "_constitution",
    "ActorTierRule": "_constitution",
    "ApprovalRule": "_constitution",
    "BudgetRule": "_constitution",
    "CommitPolicyRule": "_constitution",
    "ErrorBudgetRule": "_constitution",
    "FilesystemAllowRule": "_constitution",
    "FilesystemDenyRule": "_constitution",
    "RequireChecksRule": "_constitution",
    "SignaturesRule": "_constitution",
    "TierEntry": "_constitution",
    "load_governance": "_governance",
    "Governance": "_governance",
    "check_action": "_fence",
    "Action": "_fence",
    "Decision": "_fence",
    "Fence": "_fence",
    "acquire_lock": "_locks",
    "renew_lock": "_locks",
    "release_lock": "_locks",
    "inspect_lock": "_locks",
    "Lease": "_locks",
    "LeaseStore": "_locks",
    "LocalLeaseStore": "_locks",
    "append_audit": "_audit",
    "seal_audit": "_audit",
    "verify_audit": "_audit",
    "AuditRecord": "_audit",
    "Anchor": "_audit",
    "AuditProblem": "_audit",
    "StreamReport": "_audit",
    "AuditReport": "_audit",
    "CODES": "_errors",
    "ExoError": "_errors",
    "GovernanceError": "_errors",
    "LockError": "_errors",
    "AuditError": "_errors",
    "InputError": "_errors",
    "StateError": "_errors",
}

__all__ = [
    "CODES",
    "Action",
    "ActorTierRule",
    "Anchor",
    "ApprovalRule",
    "AuditError",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "BudgetRule",
    "CommitPolicyRule",
    "Decision",
    "ErrorBudgetRule",
    "ExoError",
    "Fence",
    "FilesystemAllowRule",
    "FilesystemDenyRule",
    "Governance",
    "GovernanceError",
    "InputError",
    "Lease",
    "LeaseStore",
    "LocalLeaseStore",
    "LockError",
    "RequireChecksRule",
    "SignaturesRule",
    "StateError",
    "StreamReport",
    "TierEntry",
    "acquire_lock",
    "append_audit",
    "check_action",
    "compile_constitution",
    "inspect_lock",
    "load_governance",
    "release_lock",
    "renew_lock",
    "seal_audit",
    "verify_audit",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"{__name__}.{home}"
    __import__(module)  # not importlib.import_module: importing importlib costs a hook ~1 ms
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
