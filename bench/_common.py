"""What the benchmarks share: a governed repository with an open session on ticket T1 (src/**),
and how figures are printed."""

from __future__ import annotations

import compileall
import json
import statistics
import subprocess
import time
from pathlib import Path


def compile_exo() -> None:
    """Byte-compile exo as pip does when it installs a wheel. An editable install is compiled only
    as it is imported, and not at all under PYTHONDONTWRITEBYTECODE (some images set it): every
    process would then compile every module it imports, and the figures would time the compiler."""
    import exo

    compileall.compile_dir(Path(exo.__file__).parent, quiet=1)


compile_exo()  # every benchmark imports this module before it times anything


def median_ms(argv: list[str], cwd: Path, runs: int, stdin: str = "") -> float:
    """Median wall time of `runs` runs of `argv` as a fresh process, in milliseconds; a run that
    fails stops the benchmark with its stderr."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr}")
    return statistics.median(times) * 1000


def governed_repo(base: Path) -> Path:
    from exo.stdlib import scaffold, sessions, tickets

    root = base / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "b@exo.invalid"], ["config", "user.name", "b"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    scaffold.init_repo(root)
    tickets.create(root, "human:b@exo.invalid", title="bench", scope=["src/**"], ticket_id="T1")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "govern"], cwd=root, check=True)
    sessions.start(root, "agent:bench", ticket_id="T1")
    return root


def report(figures: dict[str, object], budgets: str) -> None:
    """The figures as `key=value` lines, the budgets they are held to, then all of it as JSON."""
    for key, value in figures.items():
        print(f"{key}={value}")
    print(budgets)
    print(json.dumps(figures))
