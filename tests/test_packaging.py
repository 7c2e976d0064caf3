"""Packaging as a user meets it: the README's first command, verbatim, in a scratch copy of the
project, and a wheel that installs nothing but `exo` at top level."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_readme import ROOT, readme_commands

pytestmark = pytest.mark.heavy


def scratch_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "exo", copy / "exo", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_readme_demo_command_runs_as_written(tmp_path: Path) -> None:
    copy = scratch_copy(tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_commands()[0]],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DEMO=ok" in done.stdout.splitlines()


def test_wheel_installs_only_the_exo_package(tmp_path: Path) -> None:
    copy = scratch_copy(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(copy)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    (wheel,) = (tmp_path / "dist").glob("exo_kernel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"exo"}
    assert "exo/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "exo = exo.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
