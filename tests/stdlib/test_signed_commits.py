"""SEC-8, human commits: with `human_commits: true`, a change is a human's only in a commit that human
signed with a key `.exo/allowed_signers` lists for `git`. A hand-typed `Exo-Actor: human:…` trailer
— hooks off, `commit-tree`, `fast-import`, `git am`, `trailer.where=start` — or a signature by an
unlisted key is flagged from a fresh clone; the human's own signed commits pass."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from exo.stdlib import governance
from exo.stdlib.doctor import diagnose
from tests.conftest import git
from tests.stdlib.conftest import ssh_key
from tests.stdlib.test_doctor import commit, fresh_clone, governed_work, write
from tests.stdlib.test_signatures import H, list_keys

RULE = "\n```yaml exo-policy\nid: signed\ntype: signatures\nhuman_commits: true\n```\n"
FORGED = f"Exo-Actor: {H}"
UNSIGNED = ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


@pytest.fixture
def strict(keyed: Path) -> Path:
    """Signers listed, and a constitution requiring signed records, acts and human commits; the
    human's commits are signed (commit.gpgsign), as a team with this rule configures git."""
    git(keyed, "config", "commit.gpgsign", "true")
    list_keys(keyed)
    constitution = keyed / ".exo/CONSTITUTION.md"
    constitution.write_text(constitution.read_text() + RULE)
    assert governance.build(keyed, H).changed
    commit(keyed, "add", "-A", ".exo")
    commit(keyed, "commit", "-qm", "require signed human commits")
    return keyed


def flagged(root: Path) -> set[str]:
    report = diagnose(fresh_clone(root))
    return {p.subject for p in report.problems if p.code == "CONTENT_UNGOVERNED"}


def test_the_humans_signed_commits_and_a_signed_session_pass(strict: Path) -> None:
    governed_work(strict)  # a session's commits and closeout, and a signed human commit of NOTES.md
    report = diagnose(fresh_clone(strict))
    assert report.ok, report.problems
    assert report.accounted.get("exempt", 0) >= 1


def test_sec8_a_hooks_off_commit_with_a_hand_typed_human_trailer_is_flagged(strict: Path) -> None:
    write(strict, "src/forged.py")
    commit(strict, "add", "src/forged.py")
    sha = commit(strict, *UNSIGNED, "commit", "-qm", "mine", "--trailer", FORGED)
    assert f"{sha[:12]} src/forged.py" in flagged(strict)


def test_sec8_commit_tree_with_a_human_trailer_is_flagged(strict: Path) -> None:
    write(strict, "src/plumbing.py")
    commit(strict, "add", "src/plumbing.py")
    tree = git(strict, "write-tree")
    sha = git(strict, "commit-tree", tree, "-p", "HEAD", "-m", f"plumbing\n\n{FORGED}")
    git(strict, "update-ref", "HEAD", sha)
    assert f"{sha[:12]} src/plumbing.py" in flagged(strict)


def test_sec8_fast_import_with_a_human_trailer_is_flagged(strict: Path) -> None:
    message = f"imported\n\n{FORGED}\n".encode()
    content = b"imported\n"
    stream = b"".join([
        b"commit refs/heads/main\n",
        b"committer Test User <test@example.com> 1767225600 +0000\n",
        b"data %d\n%s" % (len(message), message),
        b"from " + git(strict, "rev-parse", "HEAD").encode() + b"\n",
        b"M 100644 inline src/imported.py\n",
        b"data %d\n%s\n" % (len(content), content),
    ])  # fmt: skip
    subprocess.run(["git", "fast-import", "--quiet"], cwd=strict, input=stream, check=True)
    git(strict, "reset", "-q", "--hard")
    sha = git(strict, "rev-parse", "HEAD")
    assert f"{sha[:12]} src/imported.py" in flagged(strict)


def test_sec8_git_am_of_a_patch_with_a_human_trailer_is_flagged(strict: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(strict), str(other)], check=True)
    write(other, "src/patched.py")
    commit(other, "add", "src/patched.py")
    commit(other, *UNSIGNED, "commit", "-qm", f"patched\n\n{FORGED}")
    patch = git(other, "format-patch", "-1", "--stdout")
    env = {**os.environ}
    subprocess.run(["git", *UNSIGNED, "am", "-q"], cwd=strict, input=patch + "\n", text=True, env=env, check=True)
    sha = git(strict, "rev-parse", "HEAD")
    assert f"{sha[:12]} src/patched.py" in flagged(strict)


def test_sec8_a_forged_trailer_left_last_by_trailer_where_start_is_flagged(strict: Path) -> None:
    """The hooks run (the agent's marker is set) with `trailer.where=start`: exo's stamp must not end
    up first with the typed human trailer last, where git's trailer parsing takes it."""
    write(strict, "src/where.py")
    commit(strict, "add", "src/where.py")
    env = {**os.environ, "CLAUDECODE": "1"}
    argv = ["git", "-c", "trailer.where=start", "-c", "commit.gpgsign=false", "commit", "--no-verify", "-qm"]
    subprocess.run([*argv, f"where\n\n{FORGED}"], cwd=strict, env=env, check=True, capture_output=True)
    sha = git(strict, "rev-parse", "HEAD")
    trailers = git(strict, "log", "-1", "--format=%(trailers:key=Exo-Actor,valueonly)")
    assert trailers.splitlines()[-1] != H  # exo's stamp is the last word
    assert f"{sha[:12]} src/where.py" in flagged(strict)


def test_sec8_a_commit_signed_by_a_key_not_in_allowed_signers_is_flagged(strict: Path, tmp_path: Path) -> None:
    rogue = ssh_key(tmp_path / "rogue")
    write(strict, "src/rogue.py")
    commit(strict, "add", "src/rogue.py")
    sha = commit(strict, "-c", f"user.signingkey={rogue}.pub", "-c", "core.hooksPath=/dev/null", "commit", "-S",
                 "-qm", "rogue", "--trailer", FORGED)  # fmt: skip
    assert "gpgsig" in git(strict, "cat-file", "commit", sha)
    assert f"{sha[:12]} src/rogue.py" in flagged(strict)
