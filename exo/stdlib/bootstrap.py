"""The bootstrap prompt: everything an agent needs to start, deterministic and size-bounded."""

from __future__ import annotations

from typing import assert_never

from pydantic import BaseModel

from exo.kernel import (
    ActorTierRule,
    ApprovalRule,
    BudgetRule,
    CommitPolicyRule,
    ErrorBudgetRule,
    FilesystemAllowRule,
    FilesystemDenyRule,
    Governance,
    RequireChecksRule,
    SignaturesRule,
)

from . import rules
from .records import SessionRecord
from .rules import Rule
from .runtime import Budget, OpenSession
from .tickets import Ticket

TRUNCATED = "\n[... truncated to stay within bootstrap_max_chars]\n"


class Sibling(BaseModel):
    sid: str
    actor: str
    ticket_id: str
    scope: list[str]
    overlap: str | None
    live: bool


def rules_in_words(gov: Governance) -> list[str]:
    """Each compiled rule as one plain sentence (every rule type has its own; see `_words`)."""
    out = []
    for rule in rules.typed(gov):
        actors = getattr(rule, "actors", ["*"])
        who = "" if actors == ["*"] else f" (applies to {', '.join(actors)})"
        why = f" - {rule.description}" if rule.description else ""
        out.append(f"- {rule.id}: {_words(rule)}{who}{why}")
    return out


def _words(rule: Rule) -> str:
    """One rule's sentence; mypy holds the match to every type in `Rule` (a type left out fails it)."""
    match rule:
        case FilesystemDenyRule():
            return f"never {' or '.join(rule.actions)} {_patterns(rule.patterns)}"
        case FilesystemAllowRule():
            return f"writes must stay inside {_patterns(rule.patterns)}"
        case RequireChecksRule():
            return f"session-finish runs {_globs(rule.commands)}; each must pass"
        case BudgetRule():
            limits = [f"{n} {what}" for what, n in (("files", rule.max_files), ("lines", rule.max_lines)) if n]
            return "default session budget: at most " + " and ".join(limits)
        case CommitPolicyRule():
            need = "need an open session" if rule.require_session else "do not need a session"
            return f"commits {need} (exempt: {', '.join(rule.exempt_actors) or 'nobody'})"
        case SignaturesRule():
            signed = [
                *(["session records (by the broker that closed them)"] if rule.session_records else []),
                *(["human-only acts (by the human's own key)"] if rule.human_acts else []),
                *(["humans' commits"] if rule.human_commits else []),
            ]
            return "signed, or CI rejects them: " + ("; ".join(signed) or "nothing")
        case ApprovalRule():
            waits = "; tickets an agent creates or widens wait for a human's approval" if rule.proposals else ""
            return f"only {', '.join(rule.approvers)} may set a ticket done (others reach review){waits}"
        case ActorTierRule():
            means = {
                "plan": "plan only, no writes",
                "scoped": "writes inside the fence",
                "protected": "also hook and CI config",
            }
            entries = [f"{', '.join(e.actors)}: {means[e.tier]}" for e in rule.tiers]
            return "trust tiers (first match decides; others scoped): " + "; ".join(entries)
        case ErrorBudgetRule():
            limits = [
                f"{n} {what}"
                for what, n in (
                    ("refused finishes", rule.max_refused_finishes),
                    ("fence violations", rule.max_fence_violations),
                )
                if n is not None
            ]
            return f"one past {' or '.join(limits)}, an actor may not start sessions until a human restores it"
        case _:
            assert_never(rule)


def _tier_line(gov: Governance, actor: str) -> list[str]:
    tier = gov.tier(actor)
    if tier is None:
        return []
    says = {
        "plan": "plan only: you may read and propose, but not write any file",
        "scoped": "scoped: you write inside the fence above",
        "protected": "protected: you may also write hook, harness and CI configuration in your scope",
    }
    return [f"- Your trust tier (rule {tier[1]}): {says[tier[0]]}."]


def _globs(items: list[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def _patterns(patterns: list[str]) -> str:
    """Globs in words: `!x` re-includes, so it reads as an exception."""
    kept = [p for p in patterns if not p.startswith("!")]
    excepted = [p.removeprefix("!") for p in patterns if p.startswith("!")]
    return _globs(kept) + (f" (except {_globs(excepted)})" if excepted else "")


def render(
    session: OpenSession,
    ticket: Ticket,
    gov: Governance,
    budget: Budget,
    checks: list[str],
    siblings: list[Sibling],
    history: list[SessionRecord],
    max_chars: int,
) -> str:
    """The prompt. Same inputs, same text; sections are cut from the least essential when too long."""
    head = [
        f"# exo session {session.sid}",
        "",
        f"You are {session.actor}, working on ticket {ticket.id} (priority {ticket.priority}): {ticket.title}",
        *([f"Task: {session.task}"] if session.task else []),
        "",
        "## Your fence",
        "",
        f"- You may write: {_patterns(ticket.scope.allow)}",
        *([f"- Excluded from that: {_globs(ticket.scope.deny)}"] if ticket.scope.deny else []),
        "- Never (whatever the scope): .git/ and git settings, .exo/, agent and hook configuration (.claude/,"
        " .cursor/, .mcp.json, .vscode/, AGENTS.md, CLAUDE.md, .husky/, lefthook, .pre-commit-config.yaml, ...),"
        " CI and code owners (.github/, CODEOWNERS, ...), .gitattributes, .gitmodules.",
        *_tier_line(gov, session.actor),
        f"- Budget: at most {budget.max_files} files and {budget.max_lines} changed lines.",
        f"- Lease: epoch {session.lease.epoch}, expires {session.lease.expires_at.isoformat(timespec='seconds')};"
        " renew it with `exo session-heartbeat` well before then.",
        "- Writes outside the fence are blocked by hooks where installed and always refused at finish.",
        *_found(sorted(session.found)),
        "",
        "## Constitution",
        "",
        *(rules_in_words(gov) or ["- (no rules)"]),
    ]
    finish = [
        "",
        "## How to finish",
        "",
        "1. Keep every change inside your fence; commit your work as you go.",
        '2. Run `exo session-finish --summary "what you did"`. It checks drift over everything you changed'
        " (commits, staged, unstaged, untracked), runs the checks"
        + (f" ({_globs(checks)})" if checks else "")
        + ", commits the session record and releases the lease. If it refuses, it names each path: fix and rerun.",
        '3. To stop early, hand over: `exo session-handoff --to ACTOR --summary "..." --next-step "..."`.',
    ]
    optional = []
    handoffs = [r for r in history if r.ticket_id == ticket.id and r.handoff is not None]
    if handoffs:
        last = handoffs[-1]
        assert last.handoff is not None
        optional.append(
            [
                "",
                f"## Handoff notes (from {last.actor}, session {last.sid})",
                "",
                last.handoff.summary,
                *[f"- next: {step}" for step in last.handoff.next_steps],
                *[f"- tried: {item}" for item in last.handoff.tried],
            ]
        )
    if ticket.body:
        optional.append(["", "## Ticket", "", ticket.body.strip()])
    if siblings:
        optional.append(["", "## Other sessions", "", *[_sibling(s) for s in siblings]])
    learnings = [_learning(r) for r in history if r.outcome == "finished" and _related(r, ticket)]
    if learnings:
        optional.append(["", "## Learnings from earlier sessions", "", *learnings[-10:]])
    return _bounded(head, optional, finish, max_chars)


FOUND_SHOWN = 20


def _found(paths: list[str]) -> list[str]:
    """What was already uncommitted when the session started: not the agent's, unless it changes it."""
    if not paths:
        return []
    more = f" (and {len(paths) - FOUND_SHOWN} more)" if len(paths) > FOUND_SHOWN else ""
    return [
        "",
        "## Already changed before you started",
        "",
        f"{len(paths)} path(s) already differed from HEAD when this session started{more}. They are not",
        "your work and do not count against your fence unless you change or commit them: leave them",
        "alone (a human commits or stashes them outside the session).",
        "",
        *[f"- {path}" for path in paths[:FOUND_SHOWN]],
    ]


def _sibling(s: Sibling) -> str:
    state = "" if s.live else " [lease expired]"
    clash = f" - OVERLAPS your scope (e.g. {s.overlap})" if s.overlap else ""
    return f"- {s.actor} on {s.ticket_id} (session {s.sid}), scope {_globs(s.scope)}{state}{clash}"


def _related(record: SessionRecord, ticket: Ticket) -> bool:
    if record.ticket_id == ticket.id:
        return True
    tops = {glob.split("/", 1)[0] for glob in ticket.scope.allow}
    return any(path.split("/", 1)[0] in tops for path in record.drift.files)


def _learning(record: SessionRecord) -> str:
    follow = f" Follow-ups: {'; '.join(record.follow_ups)}." if record.follow_ups else ""
    return f"- {record.ticket_id} ({record.actor}, {record.ended_at.date()}): {record.summary or 'no summary'}.{follow}"


def _bounded(head: list[str], optional: list[list[str]], finish: list[str], max_chars: int) -> str:
    def text(parts: list[list[str]]) -> str:
        lines = [line for part in parts for line in part]
        return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1])) + "\n"

    kept = list(optional)
    while kept and len(text([head, *kept, finish])) > max_chars:
        kept.pop()  # least essential last: learnings, siblings, ticket body, handoff notes
    full = text([head, *kept, finish])
    if len(full) <= max_chars:
        return full if len(kept) == len(optional) else full.rstrip("\n") + TRUNCATED
    essential = text([head, finish])
    return essential[: max(0, max_chars - len(TRUNCATED))] + TRUNCATED
