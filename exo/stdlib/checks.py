"""Running a session's checks (ticket, constitution `require_checks`, config) with live progress."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

TAIL = 4000


class CheckRun(BaseModel):
    command: str = Field(description="The shell command.")
    passed: bool = Field(description="Exited 0 within its timeout.")
    exit_code: int | None = Field(description="Exit status (null if it timed out or could not start).")
    duration_ms: int = Field(description="Wall time.")
    output: str = Field(description=f"The last {TAIL} characters of stdout and stderr.")


Progress = Callable[[str], None]


def run_all(root: Path, commands: list[str], timeout: int, progress: Progress | None = None) -> list[CheckRun]:
    """Run each command in `root` through the shell, in order, reporting progress as it goes."""
    results = []
    for number, command in enumerate(commands, start=1):
        if progress:
            progress(f"check {number}/{len(commands)}: {command}")
        result = _run(root, command, timeout)
        if progress:
            verdict = "passed" if result.passed else f"FAILED (exit {result.exit_code})"
            progress(f"check {number}/{len(commands)}: {verdict} in {result.duration_ms / 1000:.1f}s")
        results.append(result)
    return results


def _run(root: Path, command: str, timeout: int) -> CheckRun:
    start = time.monotonic()
    try:
        done = subprocess.run(
            command,
            shell=True,
            cwd=root,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        code: int | None = done.returncode
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = None, f"timed out after {timeout}s\n" + _text(exc.stdout) + _text(exc.stderr)
    except OSError as exc:
        code, output = None, f"could not start: {exc.strerror}"
    duration = int((time.monotonic() - start) * 1000)
    return CheckRun(command=command, passed=code == 0, exit_code=code, duration_ms=duration, output=output[-TAIL:])


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode(errors="replace")
