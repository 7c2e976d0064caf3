"""16 agents calling `exo next` at once: 16 distinct tickets; racing for the last one, one winner."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from exo.stdlib import tickets
from tests import workers
from tests.conftest import STRESS

pytestmark = pytest.mark.heavy
SPAWN = multiprocessing.get_context("spawn")
AGENTS = 16


def test_concurrent_next_gives_distinct_tickets_and_one_winner_for_the_last(exo_repo: Path) -> None:
    race_rounds = 20 * STRESS
    rounds = 1 + race_rounds
    barrier, results = SPAWN.Barrier(AGENTS + 1), SPAWN.Queue()
    procs = [
        SPAWN.Process(target=workers.dispatcher, args=(str(exo_repo), f"agent:a{i}", rounds, barrier, results))
        for i in range(AGENTS)
    ]
    for proc in procs:
        proc.start()
    outcomes: list[list[str]] = []
    for round_no in range(rounds):
        count = AGENTS if round_no == 0 else 1
        for i in range(count):
            tickets.create(exo_repo, "human:t@example.com", title=f"r{round_no}", scope=[f"r{round_no}/t{i}/**"])
        barrier.wait()  # release the agents together
        got = [results.get(timeout=120) for _ in range(AGENTS)]
        barrier.wait()
        outcomes.append(sorted(str(outcome) for _, outcome in got))
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    first = outcomes[0]
    assert len(set(first)) == AGENTS and not any(o == "NO_TICKET" for o in first)
    for got in outcomes[1:]:
        winners = [o for o in got if o != "NO_TICKET"]
        assert len(winners) == 1, got
        assert got.count("NO_TICKET") == AGENTS - 1
