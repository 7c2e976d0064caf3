"""Human authority: the one check for every human-only act, and the key that signs it (SPEC §14).

A human-only act — accepting drift, approving a ticket, unfreezing, changing the signers or the
constitution, restoring a revoked actor, running an agent without the sandbox, closing someone
else's session — needs a `human:` actor. Where the constitution's `signatures` rule asks for human
acts to be signed, it also needs the human's own git SSH signing key, whose principal must be that
actor: the act is then recorded with a signature CI can verify, because a name alone proves nothing
(an agent's marker is refused a human name at the edge, `identity.actor`).
"""

from __future__ import annotations

from pathlib import Path

from exo.kernel import GovernanceError, ids, load_governance

from . import keys, signing

# What each act is called in a refusal.
ACTS = {
    "accept_drift": "accept drift",
    "approve": "approve tickets",
    "unfreeze": "unfreeze the repository",
    "signers": "change .exo/allowed_signers",
    "constitution": "change the constitution",
    "restore": "restore a revoked actor",
    "no_sandbox": "run an agent without the sandbox",
    "other_session": "close another actor's session",
    "claims_gc": "delete claims on the remote",
}


def is_human(actor: str) -> bool:
    return ids.actor(actor).startswith("human:")


def require_human(actor: str, act: str) -> str:
    """`actor` if it is a human; GovernanceError(NOT_ALLOWED) naming the act otherwise."""
    if not is_human(actor):
        raise GovernanceError(f"{actor} may not {ACTS[act]}: only a human can", code="NOT_ALLOWED")
    return actor


def human_act(root: Path, actor: str, act: str, *, always_signed: bool = False) -> keys.Key | None:
    """Authorize the human-only `act` by `actor` and return the key that signs its record: the human's
    own, when the constitution requires signed human acts (or `always_signed`), else the human's key if
    git has one, else None. Raises NOT_ALLOWED (not a human, or a key listed as someone else) and
    SIGNING_KEY_MISSING."""
    require_human(actor, act)
    try:
        required = always_signed or signing.required(load_governance(root), "human_acts")
    except GovernanceError:
        required = always_signed  # no loadable lock: the act that makes one is not bound by it
    key = keys.human(root)
    if key is None:
        if required:
            keys.require_human(root)  # raises with the set-up hint
        return None
    if key.principal != actor:
        if required:
            raise GovernanceError(
                f"{actor} acts here, but git's signing key belongs to {key.principal}",
                code="NOT_ALLOWED",
                hint="act as the human whose key git signs with (git config user.email), or set your own key",
            )
        return None
    return key
