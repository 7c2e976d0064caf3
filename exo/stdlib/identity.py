"""Who is acting: a human at a terminal, or an agent (SPEC §12, identity).

An actor string is a label, never proof. What exo can do is refuse to let a process it can tell
is an agent claim a human's name: harnesses mark the processes they run (Claude Code sets
`CLAUDECODE=1`, Cursor `CURSOR_AGENT`, Gemini CLI `GEMINI_CLI=1`, Codex `CODEX_SANDBOX`), and exo's
own sandbox sets `EXO_SANDBOX`. Under a marker, a `human:` actor — from `--actor`, `EXO_ACTOR` or
anywhere else — is refused, and the default actor is the harness's agent instead of the git
user. Standard library only: git hooks resolve actors on every commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from exo.kernel import GovernanceError, ids

from . import git

# (variable, value it must have or None for any non-empty value, the agent it names)
MARKERS = (
    ("EXO_SANDBOX", None, "sandboxed"),
    ("CLAUDECODE", None, "claude-code"),
    ("CURSOR_AGENT", None, "cursor"),
    ("CURSOR_EXTENSION_HOST_ROLE", "agent-exec", "cursor"),
    ("GEMINI_CLI", None, "gemini-cli"),
    ("CODEX_SANDBOX", None, "codex"),
    ("CODEX_SANDBOX_NETWORK_DISABLED", None, "codex"),
)


def agent_marker(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable, agent) of the first harness marker set in `env`, or None."""
    for name, value, agent in MARKERS:
        got = env.get(name)
        if got and (value is None or got == value):
            return name, agent
    return None


def actor(explicit: str | None, env: Mapping[str, str], human: Callable[[], str]) -> str:
    """The acting actor: `explicit` if given, else the harness's agent under a marker, else
    `human()`. Raises GovernanceError(NOT_ALLOWED) for a human name under an agent's marker, and
    InputError(INVALID_ACTOR) for a malformed one."""
    marker = agent_marker(env)
    if explicit:
        chosen = ids.actor(explicit)
        if marker is not None and chosen.startswith("human:"):
            raise refused(chosen, marker[0])
        return chosen
    return ids.actor(f"agent:{marker[1]}") if marker is not None else human()


def label(kind: str, name: str, limit: int = 128, fallback: str = "unknown") -> str:
    """`kind:name` with `name` cut to what an actor may hold (other characters become `-`)."""
    return f"{kind}:" + (re.sub(r"[^A-Za-z0-9._@+=~-]", "-", name)[:limit] or fallback)


def git_user(root: str | Path) -> str:
    """The human at this terminal, as git knows them: `human:<user.email>`."""
    return label("human", git.config_value(root, "user.email") or "")


def refused(name: str, why: str) -> GovernanceError:
    return GovernanceError(
        f"{why}: this process runs under an agent, which may not act as {name}",
        code="NOT_ALLOWED",
        hint="human-only acts (accepting drift, unfreezing, ...) are run by a human in their own terminal",
    )
