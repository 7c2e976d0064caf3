"""Kernel figures (SPEC §10): the fence check as a fresh process, `audit verify` of 100,000 records,
and `exo --help`, each beside `python -c pass` measured in the same run.

Usage: python bench/kernel.py [--runs N] [--records N]
Prints figures; asserts nothing (budgets are compared in the output, not enforced by tests).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

FENCE_CHECK = (
    "from exo.kernel import Action, Fence, check_action, load_governance\n"
    "gov = load_governance('.')\n"
    "fence = Fence.from_dict({'allow': [['^src/', True]], 'deny': []})\n"
    "assert check_action(gov, fence, Action('agent:bench', 'write', 'src/app.py')).allowed\n"
)


def make_repo(base: Path) -> Path:
    from exo.stdlib.scaffold import init_repo

    root = base / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    init_repo(root)
    return root


def write_stream(root: Path, records: int) -> None:
    """A valid chain of `records` records, written directly (appending them one by one would
    measure fsync, not verify)."""
    from exo.kernel._audit import genesis
    from exo.kernel.canon import canonical, sha256_hex

    prev = genesis("bench")
    with (root / ".exo/audit/bench.jsonl").open("wb") as fh:
        for seq in range(1, records + 1):
            body = {
                "v": 1,
                "stream": "bench",
                "seq": seq,
                "ts": "2026-01-01T00:00:00.000Z",
                "event": "bench.step",
                "data": {"i": seq, "path": f"src/module_{seq % 97}.py"},
                "prev": prev,
            }
            body["h"] = prev = sha256_hex(canonical(body))
            fh.write(canonical(body) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-"))
    try:
        root = make_repo(base)
        floor = _common.median_ms([sys.executable, "-c", "pass"], root, args.runs)
        fence = _common.median_ms([sys.executable, "-c", FENCE_CHECK], root, args.runs)
        exo = str(Path(sys.executable).parent / "exo")
        help_ms = _common.median_ms([exo, "--help"], root, max(10, args.runs // 4))
        write_stream(root, args.records)
        from exo.kernel import verify_audit

        start = time.perf_counter()
        report = verify_audit(root)
        verify_s = time.perf_counter() - start
        assert report.ok
        figures = {
            "python_c_pass_ms": round(floor, 2),
            "fence_check_process_ms": round(fence, 2),
            "fence_check_ratio_to_floor": round(fence / floor, 2),
            "exo_help_ms": round(help_ms, 1),
            "audit_verify_records": args.records,
            "audit_verify_s": round(verify_s, 3),
        }
        _common.report(
            figures,
            "budgets: fence process <= 3 x floor (the hook adds its I/O on top), "
            "exo --help <= 150 ms, audit verify of 100,000 records <= 2 s",
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
