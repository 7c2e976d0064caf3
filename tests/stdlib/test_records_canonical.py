"""Session records encode canonically (no floats anywhere in hashed data), and records written
before the drift score was kept in basis points still read, render and verify as they did."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from exo.kernel.canon import canonical
from exo.stdlib import closeout, doctor, git, records, sessions
from exo.stdlib.drift import DriftReport

A = "agent:one"


def test_a_session_record_encodes_canonically(governed: Path) -> None:
    sid = sessions.start(governed, A, ticket_id="T1").session.sid
    (governed / "src").mkdir()
    (governed / "src/app.py").write_text("x = 1\n")
    closeout.finish(governed, A, summary="app")
    raw = (governed / records.SESSIONS / f"{sid}.json").read_bytes()
    data = json.loads(raw)
    assert isinstance(data["drift"]["score_bp"], int) and "score" not in data["drift"]
    assert canonical(data)  # raises for a float anywhere in the record


def test_a_score_is_kept_in_basis_points_and_shown_as_a_fraction() -> None:
    report = DriftReport.model_validate(_report(score_bp=1750))
    assert report.score_bp == 1750 and report.score == 0.175
    assert "score" not in report.model_dump() and report.model_dump()["score_bp"] == 1750


@pytest.mark.parametrize(("written", "bp"), [(0.0, 0), (0.175, 1750), (0.3333, 3333), (1.0, 10000)])
def test_a_record_written_with_a_fractional_score_reads_as_it_did(written: float, bp: int) -> None:
    report = DriftReport.model_validate(_report(score=written))
    assert report.score_bp == bp and f"{report.score}" == f"{written}"  # the memento shows it as before


@pytest.mark.parametrize("junk", [-0.5, 1.5, "0.2", True, None])
def test_a_fractional_score_that_is_not_one_is_refused(junk: object) -> None:
    with pytest.raises(ValueError):
        DriftReport.model_validate(_report(score=junk))


def test_doctor_verifies_a_history_whose_record_holds_a_fractional_score(
    governed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record committed as an earlier exo wrote it (`score`, a fraction): it parses, its memento
    still matches, and doctor finds nothing wrong from a fresh clone."""
    real = git.commit_only

    def as_before(root: Path, paths: list[str], message: str, trailers: dict[str, str]) -> str:
        for path in paths:
            if path.startswith(f"{records.SESSIONS}/") and path.endswith(".json"):
                text = (root / path).read_text()
                text = re.sub(r'"score_bp": (\d+)', lambda m: f'"score": {int(m.group(1)) / 10000}', text)
                (root / path).write_text(text)
        return real(root, paths, message, trailers)

    monkeypatch.setattr(git, "commit_only", as_before)
    sid = sessions.start(governed, A, ticket_id="T1").session.sid
    (governed / "src").mkdir()
    (governed / "src/app.py").write_text("x = 1\n")
    closeout.finish(governed, A, summary="app")
    committed = json.loads((governed / records.SESSIONS / f"{sid}.json").read_text())
    assert committed["drift"]["score"] == 0.0 and "score_bp" not in committed["drift"]
    fresh = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", str(governed), str(fresh)], check=True)
    report = doctor.diagnose(fresh)
    assert report.ok and report.records == 1, report.problems


def _report(**score: object) -> dict[str, object]:
    return {
        "ok": True,
        "base_commit": "0" * 40,
        "head_commit": "0" * 40,
        "files": [],
        "ignored_written": [],
        "lines_added": 0,
        "lines_removed": 0,
        "budget": {"max_files": 10, "max_lines": 100},
        "violations": [],
        **score,
    }
