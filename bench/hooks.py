"""Hook figures (SPEC §10), all from one run: medians of `python -c pass`, our PreToolUse hook (full
fence check of one path, process start to exit), our git pre-commit check with 50 staged files, and
exoprotocol 0.2.3's scope hook, installed by this script into its own scratch virtual environment.

Usage: .venv/bin/python bench/hooks.py [--runs N] [--exoprotocol-venv DIR]
Budgets: PreToolUse <= 3 x floor, pre-commit <= 4 x floor, >= 2.5 x faster than exoprotocol's hook.
exoprotocol's hook reads its payload under `input`; in this repository it finds no session of its
own and stops after loading its policy and scanning sessions, so its figure is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

EXO = str(Path(sys.executable).parent / "exo")


def governed_repo(base: Path) -> Path:
    """The shared governed repository, with 50 files staged inside the session's fence."""
    root = _common.governed_repo(base)
    (root / "src").mkdir()
    for i in range(50):
        (root / "src" / f"m{i}.py").write_text(f"x = {i}\n")
    subprocess.run(["git", "add", "src"], cwd=root, check=True)
    return root


def exoprotocol_python(base: Path, given: str | None) -> Path:
    if given:
        return Path(given) / "bin" / "python"
    venv = base / "exoprotocol-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "exoprotocol==0.2.3"], check=True)
    return venv / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--exoprotocol-venv", help="reuse a venv that already has exoprotocol 0.2.3")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-hooks-"))
    try:
        root = governed_repo(base)
        theirs = exoprotocol_python(base, args.exoprotocol_venv)
        payload = {"session_id": "b", "hook_event_name": "PreToolUse", "cwd": str(root), "tool_name": "Write"}
        ours_in = json.dumps({**payload, "tool_input": {"file_path": str(root / "src/new.py"), "content": "x"}})
        theirs_in = json.dumps({**payload, "input": {"file_path": str(root / "src/new.py"), "content": "x"}})
        env_clean = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        os.environ.clear()
        os.environ.update(env_clean)
        floor = _common.median_ms([sys.executable, "-c", "pass"], root, args.runs)
        hook = _common.median_ms([EXO, "hook", "claude", "pre-tool-use"], root, args.runs, ours_in)
        # As a harness runs it: the command `exo install` writes, which looks exo up per clone.
        from exo.stdlib.managers import AGENT_EXE

        subprocess.run(["git", "config", "exo.command", EXO], cwd=root, check=True)
        installed = _common.median_ms(["sh", "-c", f"{AGENT_EXE} hook claude pre-tool-use"], root, args.runs, ours_in)
        pre_commit = _common.median_ms([EXO, "hook", "git", "pre-commit"], root, args.runs)
        exoproto = _common.median_ms([str(theirs), "-m", "exo.stdlib.hooks", "scope-check"], root, args.runs, theirs_in)
        figures = {
            "python_c_pass_ms": round(floor, 2),
            "pre_tool_use_ms": round(hook, 2),
            "pre_tool_use_x_floor": round(hook / floor, 2),
            "pre_tool_use_as_installed_ms": round(installed, 2),
            "pre_tool_use_as_installed_x_floor": round(installed / floor, 2),
            "pre_commit_50_files_ms": round(pre_commit, 2),
            "pre_commit_x_floor": round(pre_commit / floor, 2),
            "exoprotocol_0_2_3_scope_hook_ms": round(exoproto, 2),
            "speedup_vs_exoprotocol": round(exoproto / hook, 2),
        }
        _common.report(
            figures,
            "budgets: pre_tool_use_x_floor <= 3 (as installed too), pre_commit_x_floor <= 4,"
            " speedup_vs_exoprotocol >= 2.5",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
