"""Doctor cannot be fooled by its input: bad ranges are errors (never "healthy", never a git option),
what it cannot see is a problem naming the fix, and junk in commits and records gives coded
problems, never an internal error (exit 3)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from exo.stdlib import closeout, install, sessions
from tests.conftest import exo, git

A = "agent:one"


def doctor(root: Path, *args: str) -> tuple[int, set[str], str]:
    run = exo("doctor", "--json", *args, cwd=root)
    assert run.code != 3, run.err
    codes = {p["code"] for p in json.loads(run.out)["problems"]} if run.code != 2 else set()
    return run.code, codes, run.err


def hooks_off_commit(root: Path, message: str, files: dict[str, bytes]) -> str:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    subprocess.run(["git", "add", "--", *files], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "commit", "-q", "-F", "-"],
        cwd=root,
        input=message.encode("utf-8", "surrogateescape"),
        check=True,
    )
    return git(root, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    "bad",
    ["garbage", "", "--output=OUT", "--output=OUT..HEAD", "HEAD..--output=OUT", "-p..HEAD", "a..b..c",
     "HEAD....HEAD", "HEAD ..HEAD", "HEAD..HEAD\n", "HEAD..:/x", "nope..HEAD", "HEAD..nope", "HEAD~999..HEAD"],
)  # fmt: skip
def test_a_bad_range_is_an_error_and_never_reaches_git_as_an_option(governed: Path, bad: str) -> None:
    out = governed / "OUT"
    out.write_text("precious\n")
    for form in (["--range", bad], [f"--range={bad}"]):
        code, _, err = doctor(governed, *form)
        assert code == 2 and err.startswith("error[INVALID_ARGUMENT]"), (bad, err)
    assert out.read_text() == "precious\n"


def test_a_missing_base_is_a_problem_naming_the_fix(governed: Path) -> None:
    code, codes, _ = doctor(governed, "--range", f"{'ab' * 20}..HEAD")
    assert code == 1 and codes == {"BASE_MISSING"}
    run = exo("doctor", "--range", f"{'ab' * 20}..HEAD", cwd=governed)
    assert "fetch-depth: 0" in run.out or "git fetch" in run.out


def test_a_push_whose_base_is_not_an_ancestor_is_history_rewritten(governed: Path) -> None:
    old = git(governed, "rev-parse", "HEAD")
    git(governed, "reset", "-q", "--hard", "HEAD~1")
    hooks_off_commit(governed, "elsewhere\n\nExo-Actor: human:test@example.com\n", {"x.txt": b"x\n"})
    code, codes, _ = doctor(governed, "--range", f"{old}..HEAD")
    assert code == 1 and "HISTORY_REWRITTEN" in codes
    assert doctor(governed, "--range", f"{old}...HEAD")[0] == 0  # the pull-request form compares from the merge base


def test_a_shallow_clone_is_a_problem_in_both_modes(governed: Path) -> None:
    clone = governed.parent / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{governed}", str(clone)], check=True)
    for args in ([], ["--range", "HEAD~1..HEAD"], ["--range", "HEAD...HEAD"]):
        code, codes, _ = doctor(clone, *args)
        assert code == 1 and codes == {"SHALLOW_CLONE"}, args


@pytest.fixture
def v1(governed: Path) -> tuple[Path, str]:
    """A repository with a format-1 session record (judged by trailers), hooks installed."""
    install.install(governed, git_hooks=True, claude=False, cursor=False, exe=install.exo_command())
    sid = sessions.start(governed, A, ticket_id="T1").session.sid
    assert closeout.finish(governed, A).outcome == "finished"
    path = governed / f".exo/sessions/{sid}.json"
    record = json.loads(path.read_text())
    for key in ("fence", "head_commit", "found", "products", "writes"):
        del record[key]
    record["version"] = 1
    path.write_text(json.dumps(record, indent=2) + "\n")
    subprocess.run(["git", "add", str(path)], cwd=governed, check=True)
    subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "commit", "-q", "--amend", "--no-edit"], cwd=governed)
    return governed, sid


@pytest.mark.parametrize(
    "audit",
    ["0:" + "ab" * 32, "\u0661:" + "ab" * 32, "\u00b9:" + "ab" * 32, "99999999999999999999999:" + "ab" * 32,
     "-1:x", "1:", ":", "1:" + "zz" * 32, "x" * 5000],
)  # fmt: skip
def test_junk_trailers_are_judged_not_crashed_on(v1: tuple[Path, str], audit: str) -> None:
    root, sid = v1
    message = f"odd\n\nExo-Actor: {A}\nExo-Session: {sid}\nExo-Ticket: T1\nExo-Audit: {audit}\n"
    sha = hooks_off_commit(root, message, {"src/odd.py": b"odd\n"})
    code, codes, _ = doctor(root)
    assert code == 1 and codes == {"CONTENT_UNGOVERNED"}
    report = json.loads(exo("doctor", "--json", cwd=root).out)
    assert [p["subject"] for p in report["problems"]] == [f"{sha[:12]} src/odd.py"]


@pytest.mark.parametrize(
    "trailers",
    ["Exo-Session: ../../etc/passwd", "Exo-Session: \u00e9\u0301", "Exo-Actor: " + "x" * 10000,
     "Exo-Actor human:x", "Exo-Session: a\nExo-Session: b", "Exo-Actor: human:\u202eevil", "Exo-Actor: human:a b"],
)  # fmt: skip
def test_junk_trailers_without_a_record(governed: Path, trailers: str) -> None:
    hooks_off_commit(governed, f"odd\n\n{trailers}\n", {"src/odd.py": b"odd\n"})
    code, codes, _ = doctor(governed)
    assert code == 1 and "CONTENT_UNGOVERNED" in codes  # a malformed actor is nobody's, a human's least of all


def _nested(depth: int) -> bytes:
    return b'{"sid": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("rel", "data", "code"),
    [
        (".exo/sessions/deep.json", _nested(200_000), "SESSION_RECORD_INVALID"),
        (".exo/sessions/latin.json", '{"sid": "caf\u00e9"}'.encode("latin-1"), "SESSION_RECORD_INVALID"),
        (".exo/sessions/binary.json", b"\x89PNG\r\n\x1a\n\x00\x00", "SESSION_RECORD_INVALID"),
        (".exo/sessions/empty.json", b"", "SESSION_RECORD_INVALID"),
        (".exo/sessions/list.json", b"[1, 2, 3]", "SESSION_RECORD_INVALID"),
        (".exo/tickets/T8.yaml", b"id: T8\ntitle: caf\xe9\n", "TICKET_INVALID"),
        (".exo/tickets/T7.yaml", b"a: " + b"[" * 100_000, "TICKET_INVALID"),
        (".exo/tickets/T6.yaml", b"- " * 50_000 + b"x\n", "TICKET_INVALID"),
        (".exo/config.yaml", b"\xff\xfe", "CONFIG_INVALID"),
        (".exo/audit/bad name.jsonl", b'{"v":1}\n', "AUDIT_BAD_STREAM_NAME"),
        (".exo/audit/nested.jsonl", b"[" * 100_000 + b"\n", "AUDIT_BAD_JSON"),
    ],
)
def test_junk_at_the_head_is_a_coded_problem(governed: Path, rel: str, data: bytes, code: str) -> None:
    hooks_off_commit(governed, "junk\n\nExo-Actor: human:test@example.com\n", {rel: data})
    got, codes, _ = doctor(governed)
    assert got == 1 and code in codes, codes


def test_non_utf8_messages_and_paths_do_not_crash(governed: Path) -> None:
    name = os.fsdecode(b"src/caf\xe9.py")
    (governed / "src").mkdir()
    with open(os.fsencode(governed) + b"/src/caf\xe9.py", "wb") as fh:
        fh.write(b"x\n")
    subprocess.run(["git", "add", "--", name], cwd=governed, check=True)
    subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "i18n.commitEncoding=latin-1", "commit", "-q", "-F", "-"],
        cwd=governed,
        input="caf\u00e9 \u00e0 la carte\n".encode("latin-1"),
        check=True,
    )
    code, codes, _ = doctor(governed)
    assert code == 1 and codes == {"CONTENT_UNGOVERNED"}


def test_doctor_never_runs_a_command_from_the_repository(governed: Path) -> None:
    marker = governed.parent / "pwned"
    evil = f"touch {marker}"
    (governed / ".claude").mkdir()
    hook = {"matcher": "Write", "hooks": [{"type": "command", "command": evil}]}
    (governed / ".claude/settings.json").write_text(json.dumps({"hooks": {"PreToolUse": [hook]}}))
    (governed / ".pre-commit-config.yaml").write_text(
        f"repos: [{{repo: local, hooks: [{{id: x, entry: '{evil}'}}]}}]\n"
    )
    hooks_off_commit(governed, "configs\n\nExo-Actor: human:test@example.com\n", {"x": b"x"})
    git(governed, "config", "core.fsmonitor", evil)  # doctor reads objects: no git command of its reads the worktree
    for args in ([], ["--probe"], ["--range", "HEAD~1..HEAD"], ["--fix"]):
        exo("doctor", *args, cwd=governed)
    assert not marker.exists()
