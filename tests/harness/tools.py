"""The real tools the harness tests run, pinned in one place and installed from npm into
`.ci/harness/` (`.ci/run` runs this file; a test installs what is missing)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HARNESS = Path(__file__).parents[2] / ".ci" / "harness"
PINS = {
    "@anthropic-ai/claude-code": "2.1.332",
    "husky": "9.1.7",
    "lefthook": "2.2.2",
    "@modelcontextprotocol/inspector": "2.12.0",
    "@openai/codex": "0.171.0",
    "@google/gemini-cli": "0.61.0",
}


def installed(package: str, prefix: Path = HARNESS) -> bool:
    manifest = prefix / "node_modules" / package / "package.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("version") == PINS[package]


def install(packages: list[str] | None = None, prefix: Path = HARNESS) -> None:
    """npm install the pinned packages that are not installed at their pinned version.

    Install scripts act on the directory npm runs from: lefthook's runs `lefthook install` there,
    which, inside this repository, replaced its exo hooks and wrote a `lefthook.yml` at its root.
    So npm runs from an empty directory outside any repository, with `CI` set (lefthook's script
    then does nothing) and no git variable that could point it back here."""
    missing = [p for p in (packages or list(PINS)) if not installed(p, prefix)]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"the harness tests need npm (Node.js) to install {', '.join(missing)}")
    specs = [f"{p}@{PINS[p]}" for p in missing]
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", *specs]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k not in ("LEFTHOOK", "INIT_CWD")}
    with tempfile.TemporaryDirectory() as outside:
        env |= {"CI": "true", "GIT_CEILING_DIRECTORIES": str(Path(outside).parent)}
        subprocess.run(argv, check=True, cwd=outside, env=env, stdout=subprocess.DEVNULL)


def bin_path(package: str, name: str) -> Path:
    """The executable `name` of the pinned `package`, installing it first if needed."""
    install([package])
    return HARNESS / "node_modules" / ".bin" / name


if __name__ == "__main__":
    install(sys.argv[1:] or None)
