"""Constitution compilation: every rule type, strict validation with rule id and line, stale locks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exo.kernel import Action, ExoError, Fence, GovernanceError, check_action, compile_constitution, load_governance
from exo.kernel.layout import CONSTITUTION, LOCK
from tests.conftest import exo, snapshot

ALL_TYPES = """# Rules
```yaml exo-policy
id: no-secrets
type: filesystem_deny
patterns: ["secrets/**", ".env*", "!.env.example"]
actions: [write, delete]
actors: ["agent:*"]
```

```yaml exo-policy
id: only-code
type: filesystem_allow
patterns: ["src/**", "tests/**", ".env*"]
```

```yaml exo-policy
id: tests-pass
type: require_checks
commands: ["pytest -q"]
timeout_seconds: 120
```

```yaml exo-policy
id: small
type: budget
max_files: 10
```

```yaml exo-policy
id: commits
type: commit_policy
require_session: true
exempt_actors: ["human:*", "ci:*"]
```
"""


def write(root: Path, text: str | bytes) -> None:
    path = root / CONSTITUTION
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def block(body: str) -> str:
    return f"# Rules\n\nSome prose.\n\n```yaml exo-policy\n{body}\n```\n"


def test_every_rule_type_compiles_and_is_normalized(git_repo: Path) -> None:
    write(git_repo, ALL_TYPES)
    gov = compile_constitution(git_repo)
    assert [(r["id"], r["type"], r["line"]) for r in gov.rules] == [
        ("no-secrets", "filesystem_deny", 3),
        ("only-code", "filesystem_allow", 11),
        ("tests-pass", "require_checks", 17),
        ("small", "budget", 24),
        ("commits", "commit_policy", 30),
    ]
    assert gov.rules_of("require_checks")[0]["commands"] == ["pytest -q"]
    assert gov.rules_of("budget")[0] == {
        "id": "small",
        "type": "budget",
        "description": "",
        "max_files": 10,
        "line": 24,
    }
    lock = json.loads((git_repo / LOCK).read_text())
    assert lock["source_sha256"] == gov.source_sha256 and lock["kernel_version"]


def test_rules_are_enforced_by_the_fence(git_repo: Path) -> None:
    write(git_repo, ALL_TYPES)
    gov = compile_constitution(git_repo)
    fence = Fence.from_globs(["**"])

    def rule(actor: str, path: str, op: str = "write") -> str | None:
        return check_action(gov, fence, Action(actor, op, path)).rule

    assert rule("agent:a", "src/secrets/x") is None  # anchored: secrets/** is top-level only
    assert rule("agent:a", "secrets/x") == "no-secrets"
    assert rule("agent:a", "src/.env") == "no-secrets"
    assert rule("agent:a", ".env.example") is None  # the negation re-includes it
    assert rule("agent:a", "secrets/x", "read") is None  # reads are not in the rule's actions
    assert rule("human:me@x.org", "secrets/x") == "only-code"  # deny is agent-only; allow-list still applies
    assert rule("agent:a", "docs/readme.md") == "only-code"
    assert rule("agent:a", "src/app.py") is None


def test_recompile_is_byte_stable_and_idempotent(git_repo: Path) -> None:
    write(git_repo, ALL_TYPES)
    compile_constitution(git_repo)
    first = (git_repo / LOCK).read_bytes()
    mtime = (git_repo / LOCK).stat().st_mtime_ns
    compile_constitution(git_repo)
    assert (git_repo / LOCK).read_bytes() == first
    assert (git_repo / LOCK).stat().st_mtime_ns == mtime


def test_stale_lock_refuses_governed_operations(exo_repo: Path) -> None:
    load_governance(exo_repo)
    with (exo_repo / CONSTITUTION).open("a") as fh:
        fh.write("\nA new paragraph.\n")
    with pytest.raises(GovernanceError) as caught:
        load_governance(exo_repo)
    assert caught.value.code == "GOVERNANCE_STALE"
    assert "exo build-governance" in caught.value.hint
    run = exo("check", "--paths", "src/a.py", "--scope", "src/**", cwd=exo_repo)
    assert run.code == 1 and "error[GOVERNANCE_STALE]" in run.err and "hint:" in run.err
    assert exo("build-governance", cwd=exo_repo).code == 0
    assert exo("check", "--paths", "src/a.py", "--scope", "src/**", cwd=exo_repo).code == 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["rules"].clear(),
        lambda d: d.update(source_sha256="0" * 64),
        lambda d: d["rules"][0]["compiled"]["patterns"].clear(),
    ],
    ids=["rules-removed", "source-hash-swapped", "compiled-patterns-emptied"],
)
def test_hand_edited_lock_is_refused(exo_repo: Path, edit: object) -> None:
    path = exo_repo / LOCK
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(GovernanceError) as caught:
        load_governance(exo_repo)
    assert caught.value.code == "GOVERNANCE_TAMPERED"


@pytest.mark.parametrize("junk", [b"", b"{", b"[]", b"\xff\xfe\x00", b'{"sha256": 5}', b"[" * 100_000 + b"]" * 100_000])
def test_junk_lock_is_refused(exo_repo: Path, junk: bytes) -> None:
    (exo_repo / LOCK).write_bytes(junk)
    with pytest.raises(GovernanceError) as caught:
        load_governance(exo_repo)
    assert caught.value.code == "GOVERNANCE_TAMPERED"


def test_missing_lock_and_constitution(git_repo: Path) -> None:
    with pytest.raises(GovernanceError) as caught:
        load_governance(git_repo)
    assert caught.value.code == "GOVERNANCE_MISSING"
    with pytest.raises(GovernanceError) as caught:
        compile_constitution(git_repo)
    assert caught.value.code == "CONSTITUTION_MISSING"


# (constitution text, text the error must contain): each names the rule and the line.
BAD = {
    "unknown-type": (
        block("id: r1\ntype: filesystem_denny\npatterns: [x]"),
        ["rule r1 (line 7)", "did you mean 'filesystem_deny'"],
    ),
    "missing-type": (block("id: r1\npatterns: [x]"), ["rule r1", "missing 'type'"]),
    "unknown-key": (
        block("id: r1\ntype: filesystem_deny\npatern: [x]\npatterns: [x]"),
        ["rule r1 (line 8)", "unknown key 'patern'", "did you mean 'patterns'"],
    ),
    "patterns-not-list": (block("id: r1\ntype: filesystem_deny\npatterns: x"), ["rule r1 (line 8)", "patterns"]),
    "pattern-not-string": (block("id: r1\ntype: filesystem_deny\npatterns: [5]"), ["rule r1 (line 8)", "patterns.0"]),
    "bad-action": (
        block("id: r1\ntype: filesystem_deny\npatterns: [x]\nactions: [write, execute]"),
        ["rule r1 (line 9)", "actions.1"],
    ),
    "absolute-pattern": (
        block("id: r1\ntype: filesystem_deny\npatterns: [/etc/passwd]"),
        ["rule r1 (line 8)", "absolute pattern"],
    ),
    "windows-absolute": (
        block("id: r1\ntype: filesystem_allow\npatterns: ['C:/x']"),
        ["rule r1 (line 8)", "absolute pattern"],
    ),
    "dotdot-pattern": (block("id: r1\ntype: filesystem_allow\npatterns: ['src/../..']"), ["rule r1 (line 8)", "'..'"]),
    "backslash-pattern": (
        block("id: r1\ntype: filesystem_allow\npatterns: ['src\\\\x']"),
        ["rule r1 (line 8)", "backslash"],
    ),
    "empty-pattern": (block("id: r1\ntype: filesystem_deny\npatterns: ['']"), ["rule r1 (line 8)", "empty pattern"]),
    "comment-pattern": (block("id: r1\ntype: filesystem_deny\npatterns: ['#x']"), ["rule r1 (line 8)", "comment"]),
    "empty-patterns": (block("id: r1\ntype: filesystem_deny\npatterns: []"), ["rule r1 (line 8)", "patterns"]),
    "bad-actor-pattern": (
        block("id: r1\ntype: filesystem_deny\npatterns: [x]\nactors: [agent]"),
        ["rule r1 (line 9)", "actor pattern"],
    ),
    "bad-id": (block("id: bad id\ntype: budget\nmax_files: 3"), ["line 6", "id"]),
    "duplicate-id": (
        block("id: r1\ntype: budget\nmax_files: 3") + block("id: r1\ntype: require_checks\ncommands: [x]"),
        ["rule r1", "duplicate id"],
    ),
    "two-budgets": (
        block("id: b1\ntype: budget\nmax_files: 3") + block("id: b2\ntype: budget\nmax_lines: 3"),
        ["rule b2", "only one budget"],
    ),
    "empty-budget": (block("id: b1\ntype: budget"), ["rule b1", "max_files, max_lines or both"]),
    "zero-budget": (block("id: b1\ntype: budget\nmax_files: 0"), ["rule b1 (line 8)", "max_files"]),
    "string-int": (block("id: b1\ntype: budget\nmax_files: '10'"), ["rule b1 (line 8)", "max_files"]),
    "bool-as-string": (
        block("id: c1\ntype: commit_policy\nrequire_session: 'true'"),
        ["rule c1 (line 8)", "require_session"],
    ),
    "empty-commands": (block("id: c1\ntype: require_checks\ncommands: []"), ["rule c1 (line 8)", "commands"]),
    "blank-command": (block("id: c1\ntype: require_checks\ncommands: ['']"), ["rule c1 (line 8)", "commands.0"]),
    "duplicate-key": (
        block("id: r1\ntype: filesystem_deny\npatterns: [x]\npatterns: ['**']"),
        ["line 6", "duplicate key 'patterns'"],
    ),
    "yaml-alias": (block("id: r1\ntype: filesystem_deny\npatterns: &p [x]\nactors: *p"), ["anchors and aliases"]),
    "invalid-yaml": (block("id: r1\ntype: [unclosed"), ["invalid YAML"]),
    "not-a-mapping": (block("- id: r1\n  type: budget"), ["one rule as a YAML mapping"]),
    "python-tag": (block("id: !!python/object:os.system r1\ntype: budget"), ["invalid YAML"]),
    "unclosed-block": ("# Rules\n```yaml exo-policy\nid: r1\ntype: budget\nmax_files: 1\n", ["never closed"]),
    "near-miss-info": (
        "# Rules\n```yaml exo_policy\nid: r1\ntype: filesystem_deny\npatterns: [x]\n```\n",
        ["line 2", "looks like a policy block"],
    ),
    "in-a-list-item": (
        "# Rules\n- ```yaml exo-policy\n  id: r1\n  type: budget\n  max_files: 1\n  ```\n",
        ["line 2", "inside a list item"],
    ),
    "in-a-blockquote": (
        "# Rules\n> ```yaml exo-policy\n> id: r1\n> type: budget\n> max_files: 1\n> ```\n",
        ["line 2", "move it to the top level"],
    ),
    "indented-four": ("# Rules\n\n    ```yaml exo-policy\n    id: r1\n    ```\n", ["line 3", "inside"]),
    "inside-another-block": (
        "# Rules\n````markdown\n```yaml exo-policy\nid: r1\ntype: budget\nmax_files: 1\n```\n````\n",
        ["line 3", "inside"],
    ),
    "binary-junk": (b"\x89PNG\r\n\x1a\n\xff\xfe\xfd", ["not UTF-8"]),
    "nul-bytes": ("# Rules\x00\n", ["NUL"]),
    "huge": ("#" * (1 << 20) + "\n", ["larger than"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_constitution_is_a_coded_error_that_changes_nothing(exo_repo: Path, case: str) -> None:
    text, expected = BAD[case]
    write(exo_repo, text)
    before = snapshot(exo_repo)
    run = exo("build-governance", cwd=exo_repo)
    assert run.code == 1, run.err
    assert run.err.startswith("error[CONSTITUTION_INVALID]: "), run.err
    assert "hint: " in run.err
    for fragment in expected:
        assert fragment in run.err, (fragment, run.err)
    assert snapshot(exo_repo) == before
    with pytest.raises(ExoError):
        load_governance(exo_repo)  # the old lock no longer matches the edited source: stale, not broadened


def test_all_problems_are_reported_at_once(git_repo: Path) -> None:
    write(git_repo, block("id: r1\ntype: filesystem_denny") + block("id: r2\ntype: budget\nmax_file: 3"))
    with pytest.raises(GovernanceError) as caught:
        compile_constitution(git_repo)
    assert "2 problems" in caught.value.message
    assert "rule r1" in caught.value.message and "rule r2" in caught.value.message


def test_a_block_indented_under_a_list_item_by_up_to_three_spaces_is_read(git_repo: Path) -> None:
    write(git_repo, "# Rules\n- budget:\n\n  ```yaml exo-policy\n  id: r1\n  type: budget\n  max_files: 1\n  ```\n")
    assert [rule["id"] for rule in compile_constitution(git_repo).rules] == ["r1"]


def test_blocks_that_are_not_policy_are_ignored(git_repo: Path) -> None:
    write(git_repo, "# Rules\n```yaml\nid: example\ntype: nonsense\n```\n```python\nprint('exo')\n```\n")
    assert compile_constitution(git_repo).rules == ()
