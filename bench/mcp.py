"""MCP figures (SPEC §10): median latency of a warm `check` call (one path) over stdio, the
server's start-up time (launch to initialized), and the bytes of its `tools/list` response on the
wire (what every client loads into its context), beside `python -c pass` from the same run.

Usage: .venv/bin/python bench/mcp.py [--calls N] [--starts N]
Budgets: warm check <= 5 ms median; tools/list <= 15 KB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

# This file is bench/mcp.py: keep its own directory off the import path so `import mcp` is the SDK.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402

SERVER = str(Path(sys.executable).parent / "exo-mcp")


async def measure(root: Path, calls: int, starts: int) -> dict[str, float]:
    params = StdioServerParameters(command=SERVER, cwd=str(root), env={**os.environ, "EXO_ACTOR": "agent:bench"})
    startup = []
    for _ in range(starts):
        began = time.perf_counter()
        async with Client(params) as client:
            startup.append(time.perf_counter() - began)
    async with Client(params) as client:
        for _ in range(5):  # warm: imports, caches, compiled regexes
            await client.call_tool("check", {"paths": ["src/app.py"]})
        latencies = []
        for _ in range(calls):
            began = time.perf_counter()
            result = await client.call_tool("check", {"paths": ["src/app.py"]})
            latencies.append(time.perf_counter() - began)
            assert not result.is_error and result.structured_content and result.structured_content["ok"]
    return {
        "startup_ms": round(statistics.median(startup) * 1000, 1),
        "warm_check_median_ms": round(statistics.median(latencies) * 1000, 2),
        "warm_check_p90_ms": round(sorted(latencies)[int(len(latencies) * 0.9)] * 1000, 2),
    }


def listing_bytes(root: Path) -> int:
    """The raw JSON-RPC line exo-mcp answers `tools/list` with, over its real stdio."""
    import json

    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    env = {**os.environ, "EXO_ACTOR": "agent:bench"}
    with subprocess.Popen([SERVER], cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as server:
        assert server.stdin and server.stdout
        for request in requests:
            server.stdin.write(json.dumps(request).encode() + b"\n")
        server.stdin.flush()
        for line in server.stdout:
            if json.loads(line).get("id") == 2:
                server.stdin.close()
                return len(line.rstrip(b"\n"))
    raise RuntimeError("exo-mcp did not answer tools/list")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="exo-bench-mcp-"))
    try:
        root = _common.governed_repo(base)
        floor = []
        for _ in range(10):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            floor.append(time.perf_counter() - began)
        figures = {"python_c_pass_ms": round(statistics.median(floor) * 1000, 2)}
        figures |= anyio.run(measure, root, args.calls, args.starts)
        figures["tools_list_bytes"] = listing_bytes(root)
        _common.report(figures, "budgets: warm_check_median_ms <= 5; tools_list_bytes <= 15360")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
