"""The real hook managers — husky v9 and lefthook (pinned in tests/harness/tools.py) — with exo in
their configuration: each manager's install, exo's install, the manager's own re-install, then an
agent's commits: outside the fence refused, inside it stamped, and doctor green after the session
finishes. Nothing tracked names a path of this machine, and a clone without exo refuses to commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exo.stdlib import sessions
from tests.conftest import exo, git
from tests.harness import tools

pytestmark = pytest.mark.heavy

BIN = Path(sys.executable).parent
A = "agent:one"


def env_with_exo() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def env_without_exo() -> dict[str, str]:
    kept = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "exo").exists()]
    return {**os.environ, "PATH": os.pathsep.join(kept)}


def commit(root: Path, path: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(f"{path}\n")
    git(root, "add", path)
    return subprocess.run(
        ["git", "commit", "-m", f"add {path}"], cwd=root, env=env or env_with_exo(), capture_output=True, text=True
    )


def trailers(root: Path) -> str:
    return git(root, "log", "-1", "--format=%(trailers:only)")


def tracked_text(root: Path) -> str:
    return "".join((root / p).read_text() for p in git(root, "ls-files").splitlines() if (root / p).is_file())


def run(argv: list[str], root: Path) -> None:
    done = subprocess.run(argv, cwd=root, env=env_with_exo(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def agent_round(root: Path) -> None:
    """An agent session: a commit outside the fence is refused, one inside it is stamped; then the
    session finishes and doctor is green."""
    sessions.start(root, A, ticket_id="T1")
    refused = commit(root, "docs/outside.md")
    assert refused.returncode != 0 and "docs/outside.md" in refused.stderr, refused.stdout + refused.stderr
    git(root, "reset", "-q", "HEAD", "--", "docs/outside.md")
    (root / "docs/outside.md").unlink()
    inside = commit(root, "src/app.py")
    assert inside.returncode == 0, inside.stderr
    stamp = trailers(root)
    assert f"Exo-Actor: {A}" in stamp and "Exo-Session: " in stamp and "Exo-Audit: " in stamp, stamp
    finished = exo("session-finish", "--summary", "app", "--actor", A, cwd=root, env={"PATH": env_with_exo()["PATH"]})
    assert finished.code == 0, finished.err
    doctor = exo("doctor", cwd=root)
    assert doctor.code == 0, doctor.out + doctor.err


def test_husky(governed: Path, tmp_path: Path) -> None:
    husky = tools.bin_path("husky", "husky")
    (governed / ".husky").mkdir()
    (governed / ".husky/pre-commit").write_text('echo "team hook ran" >> "$(git rev-parse --git-dir)/team.log"\n')
    run([str(husky)], governed)
    assert git(governed, "config", "core.hooksPath") == ".husky/_"
    assert exo("hook-install", "--git", cwd=governed, env={"PATH": env_with_exo()["PATH"]}).code == 0
    run([str(husky)], governed)  # husky's own re-install regenerates .husky/_
    git(governed, "add", ".husky")
    git(governed, "commit", "-qm", "hooks")
    assert "Exo-Actor: human:test@example.com" in trailers(governed)
    assert str(BIN) not in tracked_text(governed) and str(governed) not in tracked_text(governed)
    agent_round(governed)
    assert (governed / ".git/team.log").read_text().count("team hook ran") >= 2  # the team's hook still runs

    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(governed), str(teammate))
    run([str(husky)], teammate)
    refused = commit(teammate, "src/b.py", env=env_without_exo())
    assert refused.returncode != 0 and "EXO_NOT_FOUND" in refused.stderr, refused.stderr
    assert commit(teammate, "src/b.py").returncode == 0 and "Exo-Actor: human:" in trailers(teammate)

    assert exo("hook-install", "--git", "--uninstall", cwd=governed).code == 0
    assert "exo" not in (governed / ".husky/pre-commit").read_text()
    assert not (governed / ".husky/prepare-commit-msg").exists()


def test_lefthook(governed: Path) -> None:
    lefthook = tools.bin_path("lefthook", "lefthook")
    assert exo("hook-install", "--git", cwd=governed, env={"PATH": env_with_exo()["PATH"]}).code == 0
    config = "# the team's hooks\npre-commit:\n  commands:\n    team:\n      run: echo team {staged_files}\n"
    (governed / "lefthook.yml").write_text(config)
    run([str(lefthook), "install"], governed)  # moves exo's hook aside as pre-commit.old, never to run again
    assert (governed / ".git/hooks/pre-commit.old").exists()

    assert exo("hook-install", "--git", cwd=governed, env={"PATH": env_with_exo()["PATH"]}).code == 0
    assert (governed / "lefthook.yml").read_text().startswith(config)  # the team's lines byte for byte
    run([str(lefthook), "install"], governed)  # lefthook's own re-install
    git(governed, "add", "lefthook.yml", ".exo/lefthook.yml")
    git(governed, "commit", "-qm", "hooks")
    assert str(BIN) not in tracked_text(governed)
    agent_round(governed)

    again = exo("hook-install", "--git", "--json", cwd=governed, env={"PATH": env_with_exo()["PATH"]})
    assert again.code == 0 and '"changed": []' in again.out  # idempotent
    assert exo("hook-install", "--git", "--uninstall", cwd=governed).code == 0
    assert (governed / "lefthook.yml").read_text() == config and not (governed / ".exo/lefthook.yml").exists()


def test_lefthook_with_its_own_extends_list_is_not_rewritten(governed: Path) -> None:
    text = "extends:\n  - shared/lefthook.yml\n"
    (governed / "lefthook.yml").write_text(text)
    refused = exo("hook-install", "--git", cwd=governed)
    assert refused.code != 0 and ".exo/lefthook.yml" in refused.err and "hint:" in refused.err
    assert (governed / "lefthook.yml").read_text() == text


def test_a_tracked_hooks_directory_names_no_path_of_this_machine(governed: Path, tmp_path: Path) -> None:
    git(governed, "config", "core.hooksPath", ".githooks")
    assert exo("hook-install", "--git", cwd=governed, env={"PATH": env_with_exo()["PATH"]}).code == 0
    git(governed, "add", ".githooks")
    git(governed, "commit", "-qm", "hooks")
    assert str(BIN) not in tracked_text(governed)
    agent_round(governed)
    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(governed), str(teammate))
    git(teammate, "config", "core.hooksPath", ".githooks")
    refused = commit(teammate, "src/b.py", env=env_without_exo())
    assert refused.returncode != 0 and "EXO_NOT_FOUND" in refused.stderr, refused.stderr
    assert commit(teammate, "src/b.py").returncode == 0


LOCAL_CONFIG = """\
default_install_hook_types: [pre-commit, prepare-commit-msg]
repos:
  - repo: local
    hooks:
      - id: exo-fence
        name: exo fence
        entry: exo hook git pre-commit
        language: system
        pass_filenames: false
        always_run: true
        stages: [pre-commit]
      - id: exo-stamp
        name: exo stamp
        entry: exo hook git prepare-commit-msg
        language: system
        always_run: true
        stages: [prepare-commit-msg]
"""


def pre_commit_round(root: Path) -> None:
    """Through the framework: fence, stamp, and an amend that keeps its session stamp."""
    sessions.start(root, A, ticket_id="T1")
    refused = commit(root, "docs/outside.md")
    assert refused.returncode != 0 and "docs/outside.md" in (refused.stdout + refused.stderr)
    git(root, "reset", "-q", "HEAD", "--", "docs/outside.md")
    (root / "docs/outside.md").unlink()
    assert commit(root, "src/app.py").returncode == 0
    first = trailers(root)
    (root / "src/app.py").write_text("amended\n")
    git(root, "add", "src/app.py")
    amend = subprocess.run(
        ["git", "commit", "--amend", "--no-edit"], cwd=root, env=env_with_exo(), capture_output=True, text=True
    )
    assert amend.returncode == 0, amend.stdout + amend.stderr
    stamp = trailers(root)
    assert f"Exo-Actor: {A}" in stamp and "Exo-Session: " in stamp and stamp != first, stamp
    assert stamp.count("Exo-Audit") == 1
    finished = exo("session-finish", "--summary", "app", "--actor", A, cwd=root, env={"PATH": env_with_exo()["PATH"]})
    assert finished.code == 0, finished.err
    doctor = exo("doctor", cwd=root)
    assert doctor.code == 0, doctor.out + doctor.err


def test_pre_commit_framework_with_exo_installed_in_the_project(governed: Path) -> None:
    """`repo: local`: the framework runs the exo the project's environment pins."""
    (governed / ".pre-commit-config.yaml").write_text(LOCAL_CONFIG)
    run([str(BIN / "pre-commit"), "install"], governed)
    git(governed, "add", ".pre-commit-config.yaml")
    assert subprocess.run(["git", "commit", "-qm", "hooks"], cwd=governed, env=env_with_exo()).returncode == 0
    assert "Exo-Actor: human:test@example.com" in trailers(governed)
    pre_commit_round(governed)


def test_pre_commit_framework_with_this_repository_at_a_rev(governed: Path, tmp_path: Path) -> None:
    """The hooks this repository publishes (.pre-commit-hooks.yaml), at a rev: the framework builds
    its own environment with exo from that commit, as a team pinning a rev gets."""
    project = Path(__file__).parents[2]
    rev = git(project, "rev-parse", "HEAD")
    config = f"default_install_hook_types: [pre-commit, prepare-commit-msg]\nrepos:\n  - repo: {project}\n"
    config += f"    rev: {rev}\n    hooks:\n      - id: exo-fence\n      - id: exo-stamp\n"
    (governed / ".pre-commit-config.yaml").write_text(config)
    env = {**env_without_exo(), "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    for argv in (["install"], ["install-hooks"]):
        done = subprocess.run([str(BIN / "pre-commit"), *argv], cwd=governed, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    git(governed, "add", ".pre-commit-config.yaml")
    assert subprocess.run(["git", "commit", "-qm", "hooks"], cwd=governed, env=env).returncode == 0
    assert "Exo-Actor: human:test@example.com" in trailers(governed)
    pre_commit_round(governed)


def hooks_state(root: Path) -> dict[str, bytes]:
    hooks = root / ".git" / "hooks"
    return {p.name: p.read_bytes() for p in sorted(hooks.iterdir())}


def test_installing_the_pinned_tools_leaves_the_repository_it_sits_in_alone(
    governed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness tools sit in `.ci/harness/` inside this repository. lefthook's npm install script
    runs `lefthook install` in the directory npm runs from; before `tools.install` ran npm from
    outside every repository, it replaced the project's own exo hooks and wrote `lefthook.yml`."""
    assert exo("hook-install", "--git", cwd=governed, env={"PATH": env_with_exo()["PATH"]}).code == 0
    before = hooks_state(governed)
    prefix = governed / ".ci" / "harness"
    prefix.mkdir(parents=True)
    monkeypatch.chdir(governed)  # the directory a developer runs the suite from
    tools.install(["lefthook"], prefix=prefix)

    assert tools.installed("lefthook", prefix)
    assert hooks_state(governed) == before
    assert git(governed, "status", "--porcelain", "--untracked-files=normal") == "?? .ci/"
