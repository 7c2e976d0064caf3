"""`exo adapters`: the managed exo block in AGENTS.md, a CLAUDE.md that imports it, and a Cursor rule.

Managed blocks sit between markers; everything outside them belongs to the user and is never
touched. Writing is byte-stable and idempotent: the same rules give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from exo.kernel import Governance, load_governance
from exo.kernel.fs import atomic_write, read_file

from . import jsonfile
from .bootstrap import rules_in_words

BEGIN = "<!-- exo:begin - managed by `exo adapters`; edit outside this block -->"
END = "<!-- exo:end -->"


# Claude Code's and Cursor's project servers, each with the agent identity its exo-mcp acts for:
# the server's actor is fixed here (a tool call cannot change it), `${EXO_ACTOR:-…}` lets a team
# name its agents, and exo-mcp refuses a human's name.
MCP_CONFIGS = {".mcp.json": "agent:claude-code", ".cursor/mcp.json": "agent:cursor"}


def mcp_server(agent: str) -> dict[str, Any]:
    return {"command": "exo-mcp", "args": [], "env": {"EXO_ACTOR": f"${{EXO_ACTOR:-{agent}}}"}}


class AdaptersResult(BaseModel):
    changed: list[str] = Field(description="Files written.")
    unchanged: list[str] = Field(description="Files already up to date.")


def agents_block(gov: Governance) -> str:
    rules = "\n".join(rules_in_words(gov)) or "- (no rules)"
    return f"""## Working in this repository with exo

Every change is made inside a governed exo session:

1. `exo next` claims the next ticket for you (set `EXO_ACTOR=agent:<your-name>`).
2. `exo session-start` opens the session and prints your bootstrap: the ticket, your fence (the
   paths you may write), your budget and how to finish. Writes outside the fence are blocked.
3. Work and commit inside the fence; renew your lease with `exo session-heartbeat`.
4. `exo session-finish --summary "what you did"` checks drift, runs the checks, commits the
   session record and releases the lease. If it refuses, it names each path: fix and rerun.
5. To stop early: `exo session-handoff --to <actor> --summary "..." --next-step "..."`.

Never edit `.git/`, `.exo/`, hook or CI configuration, and never bypass git hooks
(`--no-verify`, `core.hooksPath`): CI re-checks every commit with `exo doctor`.

Rules of this repository (.exo/CONSTITUTION.md):

{rules}
"""


def upsert(text: str | None, block: str) -> str:
    """`text` with the managed block replaced (or appended); user text is kept byte for byte."""
    managed = f"{BEGIN}\n{block.rstrip()}\n{END}\n"
    if not text:
        return managed
    start, end = text.find(BEGIN), text.find(END)
    if start != -1 and end > start:
        return text[:start] + managed + text[end + len(END) :].removeprefix("\n")
    return text.rstrip("\n") + "\n\n" + managed


def write_adapters(root: Path) -> AdaptersResult:
    """Write AGENTS.md's block, CLAUDE.md's import of it, and .cursor/rules/exo.mdc."""
    gov = load_governance(root)
    block = agents_block(gov)
    cursor = "---\ndescription: How to work in this repository under exo governance\nalwaysApply: true\n---\n\n"
    targets = {
        "AGENTS.md": block,
        "CLAUDE.md": "@AGENTS.md\n\nThe exo rules for agents are in AGENTS.md (imported above).",
        ".cursor/rules/exo.mdc": block,
    }
    result = AdaptersResult(changed=[], unchanged=[])
    for rel in MCP_CONFIGS:
        _mcp_config(root, rel, result)
    for rel, content in targets.items():
        path = root / rel
        raw = read_file(path)
        current = raw.decode() if raw is not None else (cursor if rel.endswith(".mdc") else None)
        new = upsert(current, content).encode()
        if raw == new:
            result.unchanged.append(rel)
        else:
            atomic_write(path, new)
            result.changed.append(rel)
    return result


def _mcp_config(root: Path, rel: str, result: AdaptersResult) -> None:
    """Register `exo-mcp` as the project's `exo` MCP server, keeping every other server and key."""

    def register(doc: dict[str, Any]) -> None:
        servers = doc.setdefault("mcpServers", {})
        if not isinstance(servers, dict):
            raise ValueError("mcpServers is not an object")
        servers["exo"] = mcp_server(MCP_CONFIGS[rel])

    (result.changed if jsonfile.edit(root / rel, register) else result.unchanged).append(rel)
