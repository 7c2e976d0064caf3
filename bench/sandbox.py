"""Sandbox figures (SPEC §10): what the OS sandbox compiled from a session's fence costs a shell
command, all from one run: medians of `python -c pass`, `true` run directly, `true` run inside the
bubblewrap sandbox exo compiles for the session (the per-command cost a harness's sandboxed shell
pays), and `exo run -- true` from the command line (the one-off cost of starting an agent under
the supervisor).

Usage: .venv/bin/python bench/sandbox.py [--runs N]
Budget: `true` inside minus `true` outside <= 20 ms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import _common

EXO = str(Path(sys.executable).parent / "exo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    from exo.stdlib import runtime, sandbox

    bwrap = sandbox.bubblewrap()
    if bwrap is None:
        raise SystemExit("bubblewrap is not available here (Debian: apt install bubblewrap)")
    base = Path(tempfile.mkdtemp(prefix="exo-bench-sandbox-"))
    try:
        root = _common.governed_repo(base)
        session = runtime.current(root)
        assert session is not None
        plan = sandbox.plan(root, session, base)
        inside = plan.argv(bwrap, ["true"], root)
        figures: dict[str, float] = {}
        for _ in range(2):  # interleaved rounds; the second is reported
            figures["python_c_pass_ms"] = _common.median_ms([sys.executable, "-c", "pass"], root, args.runs)
            figures["true_outside_ms"] = _common.median_ms(["true"], root, args.runs)
            figures["true_inside_ms"] = _common.median_ms(inside, root, args.runs)
            figures["exo_run_true_ms"] = _common.median_ms([EXO, "run", "--", "true"], root, max(5, args.runs // 4))
        figures["sandbox_overhead_ms"] = figures["true_inside_ms"] - figures["true_outside_ms"]
        figures["sandbox_overhead_x_floor"] = figures["sandbox_overhead_ms"] / figures["python_c_pass_ms"]
        figures["exo_run_true_x_floor"] = figures["exo_run_true_ms"] / figures["python_c_pass_ms"]
        _common.report({k: round(v, 2) for k, v in figures.items()}, "budget: sandbox_overhead_ms <= 20")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
