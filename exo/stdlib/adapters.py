"""`exo adapters`: the managed exo block in AGENTS.md, and each harness's own files: its MCP
configuration (with the agent identity exo-mcp acts for) and, where it does not read AGENTS.md,
a pointer to it (CLAUDE.md, a Cursor rule, Gemini CLI's context setting).

Managed blocks sit between markers; everything outside them belongs to the user and is never
touched. Writing is byte-stable and idempotent: the same rules give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from exo.kernel import Governance, InputError, StateError, load_governance
from exo.kernel.fs import atomic_write, read_file

from . import jsonfile
from .bootstrap import rules_in_words

BEGIN = "<!-- exo:begin - managed by `exo adapters`; edit outside this block -->"
END = "<!-- exo:end -->"


HARNESSES = ("claude", "cursor", "codex", "gemini", "vscode")
# What says a repository already uses a harness (`exo install` configures only those, if any).
MARKS = {
    "claude": (".claude", "CLAUDE.md", ".mcp.json"),
    "cursor": (".cursor", ".cursorrules"),
    "codex": (".codex",),
    "gemini": (".gemini", "GEMINI.md"),
    "vscode": (".vscode",),
}
# Each harness's project MCP server, with the agent identity its exo-mcp acts for: the server's
# actor is fixed here (a tool call cannot change it) and exo-mcp refuses a human's name. Where the
# harness expands `${VAR:-default}` (Claude Code, Cursor), a team can name its agents by EXO_ACTOR.
MCP_CONFIGS = {
    "claude": (".mcp.json", "agent:claude-code"),
    "cursor": (".cursor/mcp.json", "agent:cursor"),
    "codex": (".codex/config.toml", "agent:codex"),
    "gemini": (".gemini/settings.json", "agent:gemini"),
    "vscode": (".vscode/mcp.json", "agent:vscode"),
}
TOML_BEGIN = "# exo:begin - managed by `exo adapters`; edit outside this block"
TOML_END = "# exo:end"


def mcp_server(agent: str, *, expands: bool = True) -> dict[str, Any]:
    actor = f"${{EXO_ACTOR:-{agent}}}" if expands else agent
    return {"command": "exo-mcp", "args": [], "env": {"EXO_ACTOR": actor}}


def detect(root: Path) -> list[str]:
    """The harnesses this repository already has files for; all of them when it has none."""
    found = [h for h in HARNESSES if any((root / mark).exists() for mark in MARKS[h])]
    return found or list(HARNESSES)


def harnesses_of(root: Path, chosen: list[str] | None) -> list[str]:
    """`chosen` checked (INVALID_ARGUMENT for a name exo does not know), else the detected ones."""
    if not chosen:
        return detect(root)
    unknown = [h for h in chosen if h not in HARNESSES]
    if unknown:
        raise InputError(
            f"exo has no adapter for {', '.join(unknown)}",
            code="INVALID_ARGUMENT",
            hint=f"choose from {', '.join(HARNESSES)}",
        )
    return [h for h in HARNESSES if h in chosen]


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


def write_adapters(root: Path, harnesses: list[str] | None = None) -> AdaptersResult:
    """Write AGENTS.md's block and the chosen harnesses' files (default: those `detect` finds)."""
    chosen = harnesses_of(root, harnesses)
    gov = load_governance(root)
    block = agents_block(gov)
    cursor = "---\ndescription: How to work in this repository under exo governance\nalwaysApply: true\n---\n\n"
    targets = {"AGENTS.md": block}
    if "claude" in chosen:
        targets["CLAUDE.md"] = "@AGENTS.md\n\nThe exo rules for agents are in AGENTS.md (imported above)."
    if "cursor" in chosen:
        targets[".cursor/rules/exo.mdc"] = block
    result = AdaptersResult(changed=[], unchanged=[])
    for harness in chosen:
        _mcp_config(root, harness, result)
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


def _mcp_config(root: Path, harness: str, result: AdaptersResult) -> None:
    """Register `exo-mcp` as the project's `exo` MCP server, keeping every other server and key."""
    rel, agent = MCP_CONFIGS[harness]
    if harness == "codex":
        _codex_config(root / rel, agent, result)
        return

    def register(doc: dict[str, Any]) -> None:
        key = "servers" if harness == "vscode" else "mcpServers"
        servers = doc.setdefault(key, {})
        if not isinstance(servers, dict):
            raise ValueError(f"{key} is not an object")
        server = mcp_server(agent, expands=harness in ("claude", "cursor"))
        servers["exo"] = {"type": "stdio", **server} if harness == "vscode" else server
        if harness == "gemini":  # Gemini CLI reads GEMINI.md unless told to read AGENTS.md too
            context = doc.setdefault("context", {})
            if not isinstance(context, dict):
                raise ValueError("context is not an object")
            names = context.get("fileName", ["GEMINI.md"])
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list):
                raise ValueError("context.fileName is not a list")
            context["fileName"] = names if "AGENTS.md" in names else ["AGENTS.md", *names]

    (result.changed if jsonfile.edit(root / rel, register) else result.unchanged).append(rel)


def _codex_config(path: Path, agent: str, result: AdaptersResult) -> None:
    """Codex CLI's `[mcp_servers.exo]` table, in a managed block at the end of .codex/config.toml
    (TOML has no comment-keeping writer in the standard library: the user's lines stay as they are)."""
    import tomllib

    rel = f".codex/{path.name}"
    raw = read_file(path)
    text = raw.decode() if raw is not None else ""
    start, end = text.find(TOML_BEGIN), text.find(TOML_END)
    user = text[:start] + text[end + len(TOML_END) :].removeprefix("\n") if 0 <= start < end else text
    try:
        theirs = tomllib.loads(user)
    except tomllib.TOMLDecodeError as exc:
        raise StateError(
            f"{rel} is not valid TOML ({exc}); not touching it", code="IO_ERROR", hint="fix it first"
        ) from exc
    if "exo" in theirs.get("mcp_servers", {}):
        raise StateError(
            f"{rel} already defines [mcp_servers.exo] outside exo's block",
            code="INVALID_ARGUMENT",
            hint="remove that table (exo adapters writes its own) and rerun",
        )
    # required: Codex waits for exo-mcp before the first turn (a cold start lost the first call),
    # and will not run in this repository without it.
    table = f'[mcp_servers.exo]\ncommand = "exo-mcp"\nargs = []\nenv = {{ EXO_ACTOR = "{agent}" }}\nrequired = true\n'
    new = (user.rstrip("\n") + "\n\n" if user.strip() else "") + f"{TOML_BEGIN}\n{table}{TOML_END}\n"
    tomllib.loads(new)  # what is written always parses
    if raw == new.encode():
        result.unchanged.append(rel)
        return
    atomic_write(path, new.encode())
    result.changed.append(rel)
