"""Sixteen colleagues saving and sixteen reading for ten seconds: no failed save, nothing lost.

The workload is bench/load.py's (payments, audited opens, Contact saves, Add client; the client
list and the balances report), bounded to 10 s per engine. Latency is the bench's business; this
test checks what a user relies on: every save lands, every acknowledged write is there after,
and the ledger still reconciles.
"""

from __future__ import annotations

import pytest

from bench.load import find_lost, run_load

# The load test wants the machine to itself as far as `make test -n 2` allows.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("load")]


def test_16_writers_and_16_readers_for_10_seconds_fail_nothing_and_lose_nothing(demo_engine):
    result = run_load(demo_engine, writers=16, readers=16, seconds=10)
    assert result.errors == []
    assert result.write_latencies and result.read_latencies
    assert result.payment_keys and result.created_numbers and result.contact_saves
    lost = find_lost(demo_engine, result)
    assert lost.total == 0, lost
    assert lost.reconciled
