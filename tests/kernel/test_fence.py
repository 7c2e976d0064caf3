"""SEC-2: the fence blocks every hostile path of the corpus and allows every legitimate one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exo.kernel import Action, Fence, InputError, check_action, compile_constitution, load_governance
from exo.kernel.layout import CONSTITUTION

RULES = """# Rules
```yaml exo-policy
id: no-secrets
type: filesystem_deny
patterns: ["src/secrets/**", ".env*", "*.pem"]
actors: ["agent:*"]
```
"""


@pytest.fixture
def fenced(git_repo: Path) -> Path:
    (git_repo / ".exo").mkdir()
    (git_repo / CONSTITUTION).write_text(RULES)
    compile_constitution(git_repo)
    src = git_repo / "src"
    (src / "sub").mkdir(parents=True)
    (git_repo / "secrets").mkdir()
    os.symlink("/etc", src / "link_out")
    os.symlink("../secrets", src / "link_secret")
    os.symlink("../.git/config", src / "file_link")
    os.symlink("../docs/new.txt", src / "dangling")
    os.symlink("/nonexistent/exo/x", src / "dangling_out")
    os.symlink("loop_b", src / "loop_a")
    os.symlink("loop_a", src / "loop_b")
    os.symlink("sub", src / "inlink")
    os.symlink("../../.exo", src / "sub" / "exo_link")
    return git_repo


def hostile(root: Path) -> list[str]:
    return [
        "../x",
        "src/../../x",
        "src/./../x",
        "/etc/passwd",
        f"{root}/../x",
        f"{root}/src/../../etc/passwd",
        "~/x",
        "~root/.ssh/id_rsa",
        "C:\\Windows\\system32\\x",
        "C:/x",
        "E:",
        "\\\\server\\share\\x",
        ".git/config",
        ".git/hooks/pre-commit",
        f"{root}/.git/hooks/pre-commit",
        ".GIT/config",
        ".Git/hooks/x",
        "src/../.git/config",
        "src\\..\\.git\\config",
        "src/sub/.git/config",
        ".git./config",
        ".git /config",
        "GIT~1/config",
        "src/git~2/HEAD",
        ".git::$INDEX_ALLOCATION/config",
        "src/file.txt::$DATA",
        "src/a:stream",
        ".exo/governance.lock.json",
        ".EXO/CONSTITUTION.md",
        ".exo/tickets/T1.yaml",
        "src/sub/exo_link/CONSTITUTION.md",
        ".claude/settings.json",
        ".Claude/settings.local.json",
        ".cursor/hooks.json",
        ".githooks/pre-commit",
        ".husky/pre-commit",
        ".pre-commit-config.yaml",
        ".gitattributes",
        "src/.gitattributes",
        ".gitmodules",
        ".github/workflows/ci.yml",
        ".GitHub/Workflows/ci.yml",
        ".gitlab-ci.yml",
        ".github/actions/setup/action.yml",
        ".github/CODEOWNERS",
        "CODEOWNERS",
        "docs/CODEOWNERS",
        ".mcp.json",
        ".vscode/tasks.json",
        ".codex/config.toml",
        ".gemini/settings.json",
        ".windsurfrules",
        "AGENTS.md",
        "Claude.md",
        "lefthook.yml",
        ".envrc",
        ".devcontainer/devcontainer.json",
        "src/\x00evil",
        "src/a\nb",
        "src/\x1b[31mred",
        "src/tab\there",
        ".g\u200cit/config",
        "\uff0egit/config",
        ".exo\u200d/x",
        "\uff0eexo/CONSTITUTION.md",
        "src/link_out/passwd",
        "src/link_secret/key",
        "src/file_link",
        "src/dangling",
        "src/dangling_out",
        "src/loop_a",
        "src/secrets/key",
        "src/SECRETS/key",
        "src/.env",
        "src/.ENV.local",
        "src/cert.PEM",
        "docs/readme.md",
        "README.md",
        "",
        ".",
        "src/..",
        "src/" + "a" * 5000,
    ]


LEGIT = [
    "src/a.py",
    "src/deep/nested/file.txt",
    "src/\u00fcn\u00efc\u00f6de.py",
    "src/with space.txt",
    "src/a..b.txt",
    "./src/a.py",
    "src//a.py",
    "src/x/../a.py",
    "src/inlink/f.py",
    "src/.github/notes.md",
    "src/legit~1",
    "src/exo/x.py",
    "src/git/x.py",
    "src/environment.py",
]


def test_corpus_sizes() -> None:
    assert len(hostile(Path("/r"))) >= 40
    assert len(LEGIT) >= 10


def test_every_hostile_path_is_blocked(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"])
    allowed = [p for p in hostile(fenced) if check_action(gov, fence, Action("agent:a", "write", p)).allowed]
    assert allowed == []


def test_hostile_deletes_are_blocked_too(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"])
    allowed = [p for p in hostile(fenced) if check_action(gov, fence, Action("agent:a", "delete", p)).allowed]
    assert allowed == []


def test_protected_paths_are_blocked_even_with_a_scope_of_everything(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["**", "*"])
    protected = [p for p in hostile(fenced) if p.lower().startswith((".git", ".exo", ".claude", ".cursor", ".github"))]
    assert len(protected) >= 15
    decisions = {p: check_action(gov, fence, Action("agent:a", "write", p)) for p in protected}
    assert [p for p, d in decisions.items() if d.allowed] == []


def test_every_legitimate_path_is_allowed(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"])
    denied = {p: d.reason for p in LEGIT if not (d := check_action(gov, fence, Action("agent:a", "write", p))).allowed}
    assert denied == {}
    absolute = check_action(gov, fence, Action("agent:a", "write", str(fenced / "src" / "a.py")))
    assert absolute.allowed and absolute.path == "src/a.py"


def test_denies_name_their_rule(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"], deny=["src/generated/**"])

    def rule(path: str) -> str | None:
        return check_action(gov, fence, Action("agent:a", "write", path)).rule

    assert rule("../x") == "exo:outside-repo"
    assert rule("src/link_out/passwd") == "exo:symlink-escape"
    assert rule(".git/config") == "exo:protected"
    assert rule("src/file_link") == "exo:protected"
    assert rule("src/a:b") == "exo:ntfs-alias"
    assert rule("src/\x00") == "exo:invalid-path"
    assert rule("src/secrets/k") == "no-secrets"
    assert rule("docs/x") == "exo:scope"
    assert rule("src/generated/x.py") == "exo:scope-deny"
    assert rule("src/a.py") is None


def test_exo_writes_its_own_session_files(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"], exo_paths=[".exo/sessions/S1.json"])
    assert check_action(gov, fence, Action("agent:a", "write", ".exo/sessions/S1.json")).allowed
    assert not check_action(gov, fence, Action("agent:a", "write", ".exo/sessions/S2.json")).allowed


def test_reads_ignore_scope_and_protection(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"])
    assert check_action(gov, fence, Action("agent:a", "read", ".git/config")).allowed
    bad_op = check_action(gov, fence, Action("agent:a", "chmod", "src/a.py"))
    assert not bad_op.allowed and bad_op.rule == "exo:invalid-action"


def test_humans_are_not_bound_by_agent_only_rules(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**"])
    assert check_action(gov, fence, Action("human:me@x.org", "write", "src/.env")).allowed


@pytest.mark.parametrize("bad", ["/abs/**", "../x", "src/../x", "", "  src", "a\\b", "#c", "src/./x", "x\x00"])
def test_bad_scope_globs_are_refused(bad: str) -> None:
    with pytest.raises(InputError) as caught:
        Fence.from_globs([bad])
    assert caught.value.code == "INVALID_PATTERN"


def test_fence_round_trips_through_its_compiled_form(fenced: Path) -> None:
    gov = load_governance(fenced)
    fence = Fence.from_globs(["src/**", "!src/vendor/**"], deny=["src/gen/**"], exo_paths=[".exo/x"])
    again = Fence.from_dict(fence.to_dict())
    for path in ["src/a.py", "src/vendor/x.py", "src/gen/y", ".exo/x", "docs/z"]:
        first = check_action(gov, fence, Action("agent:a", "write", path))
        second = check_action(gov, again, Action("agent:a", "write", path))
        assert first == second
    assert not check_action(gov, fence, Action("agent:a", "write", "src/vendor/x.py")).allowed
