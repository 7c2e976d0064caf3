"""The real tools the harness tests run, pinned in one place and installed from npm into
`.ci/harness/` (`.ci/run` runs this file; a test installs what is missing)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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


def installed(package: str) -> bool:
    manifest = HARNESS / "node_modules" / package / "package.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("version") == PINS[package]


def install(packages: list[str] | None = None) -> None:
    """npm install the pinned packages that are not installed at their pinned version."""
    missing = [p for p in (packages or list(PINS)) if not installed(p)]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"the harness tests need npm (Node.js) to install {', '.join(missing)}")
    specs = [f"{p}@{PINS[p]}" for p in missing]
    argv = [npm, "install", "--prefix", str(HARNESS), "--no-audit", "--no-fund", "--loglevel=error", *specs]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def bin_path(package: str, name: str) -> Path:
    """The executable `name` of the pinned `package`, installing it first if needed."""
    install([package])
    return HARNESS / "node_modules" / ".bin" / name


if __name__ == "__main__":
    install(sys.argv[1:] or None)
