"""The constitution compiler: Markdown policy blocks in, a validated, hash-pinned lock out.

Every rule is validated strictly (unknown type or key, wrong value type, bad pattern) and every
problem is reported with the rule id and its line in CONSTITUTION.md. A failed compile raises before
anything is written, so the previous lock stays as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from exo import __version__

from . import ids, yamldoc
from ._errors import GovernanceError
from ._governance import LOCK_FORMAT, Governance, _from_doc, lock_digest
from ._patterns import compile_patterns, pattern_problem
from .canon import canonical
from .fs import atomic_write, read_file
from .ids import ACTOR_PATTERN_RE, ID_RE
from .layout import CONSTITUTION, LOCK

MAX_SOURCE_BYTES = 1 << 20
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(.*?)\s*$")
_NESTED_POLICY = re.compile(r"(`{3,}|~{3,})\s*yaml\s+exo-policy\b")


def _patterns(value: list[str]) -> list[str]:
    for pattern in value:
        problem = pattern_problem(pattern)
        if problem:
            raise ValueError(problem)
    return value


def _actors(value: list[str]) -> list[str]:
    for actor in value:
        if not ACTOR_PATTERN_RE.fullmatch(actor):
            raise ValueError(f"{actor!r} is not an actor pattern like 'agent:*' or 'human:*'")
    return value


NonEmpty = Annotated[str, Field(min_length=1, max_length=4096)]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(pattern=f"^{ID_RE.pattern}$", description="Unique rule id.")
    description: str = Field(default="", max_length=2000, description="Why the rule exists.")


class _PathRule(_Rule):
    patterns: list[str] = Field(min_length=1, description="gitignore-style globs, repo-relative.")
    actors: list[str] = Field(default=["*"], min_length=1, description="Actor patterns the rule applies to.")

    _check_patterns = field_validator("patterns")(_patterns)
    _check_actors = field_validator("actors")(_actors)


class FilesystemDenyRule(_PathRule):
    type: Literal["filesystem_deny"]
    actions: list[Literal["read", "write", "delete"]] = Field(default=["write", "delete"], min_length=1)


class FilesystemAllowRule(_PathRule):
    type: Literal["filesystem_allow"]


class RequireChecksRule(_Rule):
    type: Literal["require_checks"]
    commands: list[NonEmpty] = Field(min_length=1, description="Shell commands that must exit 0.")
    timeout_seconds: int = Field(default=600, ge=1, le=86400)


class BudgetRule(_Rule):
    type: Literal["budget"]
    max_files: int | None = Field(default=None, ge=1)
    max_lines: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_limit(self) -> BudgetRule:
        if self.max_files is None and self.max_lines is None:
            raise ValueError("a budget needs max_files, max_lines or both")
        return self


class CommitPolicyRule(_Rule):
    type: Literal["commit_policy"]
    require_session: bool = True
    exempt_actors: list[str] = Field(default=["human:*"])

    _check_actors = field_validator("exempt_actors")(_actors)


class SignaturesRule(_Rule):
    """Which acts must carry a signature that `.exo/allowed_signers` vouches for (SPEC §14)."""

    type: Literal["signatures"]
    session_records: bool = Field(default=True, description="Session records signed by the broker that closed them.")
    human_acts: bool = Field(
        default=True, description="Human-only acts (accepting drift, approving, unfreezing, changing the signers)."
    )
    human_commits: bool = Field(default=False, description="Commits stamped by a human carry their SSH signature.")


class ApprovalRule(_Rule):
    """Who may close a ticket as done, and whether agents' tickets wait for a human (SPEC §14)."""

    type: Literal["approval"]
    approvers: list[str] = Field(default=["human:*"], min_length=1, description="Who may set a ticket done.")
    proposals: bool = Field(default=True, description="Tickets an agent creates or widens wait in `proposed`.")

    _check_actors = field_validator("approvers")(_actors)


class TierEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    actors: list[str] = Field(min_length=1, description="Actor patterns in this tier.")
    tier: Literal["plan", "scoped", "protected"] = Field(
        description="plan: no writes; scoped: inside the fence; protected: also hook, harness and CI configuration."
    )

    _check_actors = field_validator("actors")(_actors)


class ActorTierRule(_Rule):
    """Trust tiers per actor pattern (SPEC §14): the first entry whose pattern matches decides."""

    type: Literal["actor_tier"]
    tiers: list[TierEntry] = Field(min_length=1, description="Entries in order; unmatched actors are scoped.")


class ErrorBudgetRule(_Rule):
    """How many refused finishes and fence violations an actor may accumulate (SPEC §14)."""

    type: Literal["error_budget"]
    actors: list[str] = Field(default=["agent:*"], min_length=1, description="Actor patterns it applies to.")
    max_refused_finishes: int | None = Field(default=None, ge=0, description="Refused finishes allowed.")
    max_fence_violations: int | None = Field(default=None, ge=0, description="Fence denials allowed.")

    _check_actors = field_validator("actors")(_actors)

    @model_validator(mode="after")
    def _some_limit(self) -> ErrorBudgetRule:
        if self.max_refused_finishes is None and self.max_fence_violations is None:
            raise ValueError("an error budget needs max_refused_finishes, max_fence_violations or both")
        return self


RULE_TYPES: dict[str, type[_Rule]] = {
    "filesystem_deny": FilesystemDenyRule,
    "filesystem_allow": FilesystemAllowRule,
    "require_checks": RequireChecksRule,
    "budget": BudgetRule,
    "commit_policy": CommitPolicyRule,
    "signatures": SignaturesRule,
    "approval": ApprovalRule,
    "actor_tier": ActorTierRule,
    "error_budget": ErrorBudgetRule,
}
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
)  # every compiled rule is one of these (exo.stdlib.rules reads the lock's rules back as them)
SINGLETONS = ("budget", "commit_policy", "signatures", "approval", "actor_tier")


class _Block:
    def __init__(self, line: int, text: str) -> None:
        self.line = line  # 1-based line of the first YAML line in CONSTITUTION.md
        self.text = text


def compile_constitution(root: str | os.PathLike[str]) -> Governance:
    """Compile `.exo/CONSTITUTION.md` of `root` into `.exo/governance.lock.json` and return it loaded.

    The lock is rewritten only when its bytes change. Raises GovernanceError(CONSTITUTION_MISSING)
    or GovernanceError(CONSTITUTION_INVALID) listing every problem with rule id and line; on error
    the previous lock is left untouched.
    """
    base = Path(root).absolute()
    source_path = base / CONSTITUTION
    source = read_file(source_path)
    if source is None:
        raise GovernanceError(f"{CONSTITUTION} not found in {base}", code="CONSTITUTION_MISSING")
    rules = _compile_source(source)
    doc: dict[str, Any] = {
        "format": LOCK_FORMAT,
        "kernel_version": __version__,
        "source": CONSTITUTION,
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "rules": rules,
    }
    doc["sha256"] = lock_digest(doc)
    data = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    lock_path = base / LOCK
    if read_file(lock_path) != data:
        atomic_write(lock_path, data)
    return _from_doc(base, doc, doc["source_sha256"])


def _compile_source(source: bytes) -> list[dict[str, Any]]:
    if len(source) > MAX_SOURCE_BYTES:
        _fail([f"{CONSTITUTION} is larger than {MAX_SOURCE_BYTES} bytes"])
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail([f"{CONSTITUTION} is not UTF-8 text (byte {exc.start})"])
    if "\x00" in text:
        _fail([f"{CONSTITUTION} contains NUL bytes"])
    problems: list[str] = []
    rules: list[dict[str, Any]] = []
    blocks = list(_blocks(text, problems))
    for block in blocks:
        rule = _compile_block(block, problems)
        if rule is not None:
            rules.append(rule)
    seen: dict[str, int] = {}
    for rule in rules:
        if rule["id"] in seen:
            problems.append(
                f"rule {rule['id']} (line {rule['line']}): duplicate id, first used on line {seen[rule['id']]}"
            )
        seen.setdefault(rule["id"], rule["line"])
    for rule_type in SINGLETONS:
        extra = [r for r in rules if r["type"] == rule_type][1:]
        problems += [f"rule {r['id']} (line {r['line']}): only one {rule_type} rule is allowed" for r in extra]
    if problems:
        _fail(problems)
    return rules


def _fail(problems: list[str]) -> Any:
    count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
    raise GovernanceError(
        f"{CONSTITUTION} does not compile ({count}):\n  " + "\n  ".join(problems),
        code="CONSTITUTION_INVALID",
    )


def _blocks(text: str, problems: list[str]) -> Iterator[_Block]:
    """The top-level ```` ```yaml exo-policy ```` blocks. One found anywhere else (in a list item, a
    blockquote, an indented or another fenced block) is a problem: it would otherwise be skipped."""
    lines = text.splitlines()
    read: set[int] = set()  # lines of top-level policy blocks, their fences included
    yield from _top_level(lines, problems, read)
    for number, line in enumerate(lines, start=1):
        if number not in read and _NESTED_POLICY.search(line):
            problems.append(
                f"line {number}: an exo-policy block inside a list item, a blockquote or another block is "
                "not read; move it to the top level (no indentation, no '>')"
            )


def _top_level(lines: list[str], problems: list[str], read: set[int]) -> Iterator[_Block]:
    i = 0
    while i < len(lines):
        opened = _FENCE_OPEN.match(lines[i])
        i += 1
        if not opened:
            continue
        fence, info = opened.groups()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        start = i
        while i < len(lines) and not close.match(lines[i]):
            i += 1
        body = "\n".join(lines[start:i])
        if i == len(lines) and info.split() == ["yaml", "exo-policy"]:
            problems.append(f"line {start}: exo-policy block is never closed")
        i += 1
        words = info.split()
        if words == ["yaml", "exo-policy"]:
            read.update(range(start, i + 1))
            yield _Block(start + 1, body)
        elif re.search(r"exo.?pol", info, re.IGNORECASE):
            problems.append(
                f"line {start}: fenced block {info!r} looks like a policy block but is not "
                "'yaml exo-policy', so it would be ignored"
            )


def _compile_block(block: _Block, problems: list[str]) -> dict[str, Any] | None:
    try:
        data, key_lines = yamldoc.load(block.text, first_line=block.line)
    except yamldoc.YamlProblem as exc:
        problems.append(f"block at line {block.line}, line {exc.line}: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"block at line {block.line}: a policy block holds one rule as a YAML mapping")
        return None
    rule_id = data.get("id") if isinstance(data.get("id"), str) else "?"
    rule_type = data.get("type")
    model = RULE_TYPES.get(rule_type) if isinstance(rule_type, str) else None
    if model is None:
        problems.append(f"rule {rule_id} (line {key_lines.get('type', block.line)}): {_type_problem(rule_type)}")
        return None
    try:
        rule = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            line = key_lines.get(key, block.line)
            problems.append(f"rule {rule_id} (line {line}): {_error_text(error, model)}")
        return None
    return _normalize(rule, block.line)


def _type_problem(rule_type: object) -> str:
    known = ", ".join(RULE_TYPES)
    if rule_type is None:
        return f"missing 'type' (one of {known})"
    guess = difflib.get_close_matches(str(rule_type), RULE_TYPES, n=1)
    return f"unknown rule type {rule_type!r}" + (f" (did you mean {guess[0]!r}?)" if guess else f" (one of {known})")


def _error_text(error: Any, model: type[_Rule]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(key, model.model_fields, n=1)
        allowed = ", ".join(model.model_fields)
        return f"unknown key {key!r}" + (f" (did you mean {guess[0]!r}?)" if guess else f" (allowed: {allowed})")
    if kind == "missing":
        return f"missing required key {key!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {message} (got {error.get('input')!r})" if key else message


def _normalize(rule: _Rule, line: int) -> dict[str, Any]:
    out = rule.model_dump(exclude_none=True)
    out["line"] = line
    if isinstance(rule, _PathRule):
        if isinstance(rule, FilesystemDenyRule):
            out["actions"] = sorted(set(rule.actions))
        out["compiled"] = {
            "patterns": [list(pair) for pair in compile_patterns(rule.patterns)],
            "actors": ids.actor_patterns_regex(rule.actors),
        }
    if isinstance(rule, ActorTierRule):
        out["compiled"] = [[ids.actor_patterns_regex(e.actors), e.tier] for e in rule.tiers]
    canonical(out)  # normalized rules are hashed: prove they are canonical-JSON clean now
    return out
