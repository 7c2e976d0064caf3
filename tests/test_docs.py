"""The docs match the code: every code, problem kind and built-in rule is documented; examples compile."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from exo.kernel import CODES, compile_constitution
from exo.kernel._audit import ProblemKind
from exo.kernel.layout import CONSTITUTION

DOCS = Path(__file__).parent.parent / "docs"
FENCE_SOURCE = Path(__file__).parent.parent / "exo" / "kernel" / "_fence.py"


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "kernel.md").read_text()
    assert [code for code in CODES if f"`{code}`" not in text] == []


def test_every_audit_problem_kind_is_documented() -> None:
    text = (DOCS / "kernel.md").read_text()
    assert [kind for kind in typing.get_args(ProblemKind) if f"`{kind}`" not in text] == []


def test_every_builtin_fence_rule_is_documented() -> None:
    rules = set(re.findall(r'"(exo:[a-z-]+)"', FENCE_SOURCE.read_text()))
    assert len(rules) >= 9
    text = (DOCS / "kernel.md").read_text()
    assert sorted(r for r in rules if f"`{r}`" not in text) == []


def policy_examples() -> list[str]:
    text = (DOCS / "constitution.md").read_text()
    return re.findall(r"^```yaml exo-policy\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("example", policy_examples())
def test_constitution_examples_compile(git_repo: Path, example: str) -> None:
    (git_repo / ".exo").mkdir()
    (git_repo / CONSTITUTION).write_text(f"```yaml exo-policy\n{example}```\n")
    assert len(compile_constitution(git_repo).rules) == 1


def test_there_are_examples_of_every_rule_type() -> None:
    from exo.kernel._constitution import RULE_TYPES

    types = {re.search(r"^type: (\w+)", e, re.MULTILINE).group(1) for e in policy_examples()}  # type: ignore[union-attr]
    assert types == set(RULE_TYPES)


@pytest.mark.parametrize("example", policy_examples())
def test_every_documented_rule_reads_back_typed_and_in_words(git_repo: Path, example: str) -> None:
    from exo.kernel._constitution import RULE_TYPES
    from exo.stdlib import bootstrap, rules

    assert rules.MODELS == RULE_TYPES  # the typed view and the compiler know the same types
    (git_repo / ".exo").mkdir()
    (git_repo / CONSTITUTION).write_text(f"```yaml exo-policy\n{example}```\n")
    gov = compile_constitution(git_repo)
    [typed] = rules.typed(gov)
    assert type(typed) is RULE_TYPES[gov.rules[0]["type"]] and typed.id == gov.rules[0]["id"]
    [words] = bootstrap.rules_in_words(gov)
    assert words.startswith(f"- {typed.id}: ") and len(words) > len(typed.id) + 8


def test_every_drift_kind_is_documented() -> None:
    from exo.stdlib.drift import Kind

    text = (DOCS / "sessions.md").read_text()
    assert [kind for kind in typing.get_args(Kind) if f"`{kind}`" not in text] == []


def test_the_drift_score_formula_is_the_documented_one() -> None:
    from exo.stdlib.drift import Violation, _score
    from exo.stdlib.runtime import Budget

    budget = Budget(max_files=10, max_lines=100)
    one_bad = [Violation(kind="out_of_scope", path="a", reason="r")]
    assert _score([], 4, 10, budget) == 0
    assert _score(one_bad, 4, 10, budget) == 1750  # 0.7 * 1/4, in basis points
    assert _score([], 20, 10, budget) == 3000  # files doubled: full budget excess
    assert "0.7 * min(1, violating paths / changed files)" in (DOCS / "sessions.md").read_text()


def test_every_doctor_problem_code_is_documented() -> None:
    from exo.stdlib.doctor import FIX

    text = (DOCS / "ci.md").read_text()
    fixes_only = ("GOVERNANCE", "AUDIT", "STATE_REBUILDABLE")  # fix keys several codes share, not codes
    codes = [c for c in FIX if c not in fixes_only] + ["GOVERNANCE_STALE", "AUDIT_<KIND>"]
    assert [c for c in codes if f"`{c}`" not in text] == []


def test_every_mcp_tool_is_documented() -> None:
    import anyio
    from mcp import Client

    from exo.mcp_server import build

    async def names() -> list[str]:
        async with Client(build(Path.cwd(), None)) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    text = (DOCS / "mcp.md").read_text()
    assert [name for name in anyio.run(names) if f"### `{name}`" not in text] == []


def test_every_test_docs_security_cites_exists() -> None:
    """Each claim in docs/security.md names the test that shows it; each named test must exist."""
    text = (DOCS / "security.md").read_text()
    cited, path = [], None
    for file, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", text):
        path = file or path
        if name:
            cited.append((path, name))
        elif file:
            cited.append((file, None))
    assert len(cited) >= 30
    missing = []
    for file, name in cited:
        source = DOCS.parent / file
        if not source.is_file() or (
            name and not re.search(rf"^(?:async )?def {name}\(", source.read_text(), re.MULTILINE)
        ):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_every_harness_and_pinned_tool_is_documented() -> None:
    from exo.stdlib.adapters import HARNESSES
    from tests.harness.tools import PINS

    text = (DOCS / "harnesses.md").read_text()
    titles = {"claude": "Claude Code", "cursor": "Cursor", "codex": "Codex CLI", "gemini": "Gemini CLI"}
    titles["vscode"] = "VS Code"
    assert [h for h in HARNESSES if f"\n## {titles[h]}\n" not in text] == []
    for package in ("@anthropic-ai/claude-code", "@openai/codex", "@google/gemini-cli", "husky", "lefthook"):
        name = package.rsplit("/", 1)[-1] if package in ("husky", "lefthook") else f"`{package}`"
        assert f"{name} {PINS[package]}" in text, package  # the version the tests run
