"""`exo demo` needs no setup: it runs in a clean environment and prints its stable markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXPECTED = {
    "INIT": "ok created=2",
    "COMPILE": "ok rules=2",
    "FENCE_IN_SCOPE": "allow",
    "FENCE_OUT_OF_SCOPE": "deny rule=exo:scope",
    "FENCE_PROTECTED": "deny rule=exo:protected",
    "FENCE_SECRET": "deny rule=no-secrets",
    "BAD_CONSTITUTION": "CONSTITUTION_INVALID lock_unchanged=yes",
    "LOCK_RACE_WINNERS": "1",
    "LOCK_RACE_LOSER": "LOCK_HELD",
    "LOCK_TAKEOVER": "epoch=2 holder=agent:carol",
    "AUDIT_VERIFY": "ok streams=3 records=7",  # the init event, the demo session, the clone's local stream
    "AUDIT_TAMPER_EDIT": "detected kinds=copy_mismatch,hash_mismatch",
    "AUDIT_TAMPER_TRUNCATE": "detected kinds=anchor_missing,copy_mismatch",
    "NEXT_RACE": "distinct",
    "NEXT_TICKETS": "T-app,T-docs",
    "SESSION_START": "ok ticket=T-app",
    "COMMIT_STAMPED": "Exo-Actor,Exo-Audit,Exo-Claim,Exo-Policy,Exo-Session,Exo-Ticket",
    "COMMIT_REFUSED": "refused",
    "FINISH_REFUSED": "DRIFT out_of_scope:docs/notes.md",
    "FINISH_CLEAN": "ok files=1",
    "SECOND_FINISH": "ok",
    "SESSION_RECORDS_VERIFY": "ok anchors=2",
    "DOCTOR": "ok",
    "BYPASS_CAUGHT": "COMMIT_UNGOVERNED,CONTENT_UNGOVERNED",
    "DEMO": "ok",
}


def clean_env(home: Path) -> dict[str, str]:
    """Only what a fresh machine has: PATH and an empty HOME (no git identity, no exo settings)."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}


def test_demo_runs_in_a_clean_environment(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "exo"
    done = subprocess.run([str(exe), "demo"], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    told = lines[0::2]  # each marker comes after the plain line that tells the step
    assert all(line.startswith("# ") and len(line) > 10 for line in told), told
    markers = dict(line.split("=", 1) for line in lines[1::2])
    repo = Path(markers.pop("DEMO_REPO"))
    assert markers == EXPECTED
    assert not repo.exists()  # the throwaway repository is removed
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_demo_json_and_keep(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "exo"
    done = subprocess.run(
        [str(exe), "demo", "--json", "--keep"], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["markers"]["DEMO"] == "ok"
    repo = Path(result["repo"])
    try:
        assert (repo / ".exo/governance.lock.json").exists()
    finally:
        import shutil

        shutil.rmtree(repo.parent, ignore_errors=True)
