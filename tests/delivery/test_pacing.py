"""Pacing: request_sleep_interval_ms, max_requests_per_second, and backing off on 429."""

import contextlib
import json
import threading
import time
from itertools import pairwise

import pytest
from support.loopback import Got, Server, items_input
from support.run import data_file, run_target

from target_restapi.delivery.pacing import AdaptiveLimit, RateLimit
from target_restapi.errors import Stopped

# What the server can measure exactly: a pause runs from the end of one answer (the target
# has it only after the server recorded `done`) to the next arrival, so `arrival - done` is
# a strict lower bound. A rate spaces request starts; the server sees each start a little
# late, by however long the loaded machine takes to schedule its thread, so a rate is checked
# cumulatively from the first arrival with RATE_SLACK for that delay (without pacing the
# span would be near 0). Both check behaviour, not speed.
SLACK = 0.005
RATE_SLACK = 0.05


def pauses(requests: list[Got]) -> list[float]:
    """For each request after the first: time from the previous answer to its arrival."""
    return [later.at - earlier.done for earlier, later in pairwise(requests)]


def spaced(arrivals: list[float], interval: float) -> bool:
    """Request k arrived no earlier than k intervals after the first (arrivals sorted)."""
    return all(at - arrivals[0] >= k * interval - RATE_SLACK for k, at in enumerate(arrivals))


@pytest.mark.parametrize(
    ("settings", "requests"),
    [
        ({"request_mode": "single"}, 3),
        ({"request_mode": "batch", "batch_size": 2}, 3),
    ],
    ids=["single", "batch"],
)
def test_requests_are_spaced_by_the_interval(tmp_path, settings, requests):
    # users.singer holds 5 records; keep the single-mode run to 3 requests.
    lines = data_file("users.singer").read_text().splitlines()
    text = "\n".join(lines[:4] if settings["request_mode"] == "single" else lines) + "\n"
    with Server() as server:
        config = {"url": server.url("/users"), "request_sleep_interval_ms": 200, **settings}
        result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == requests
    assert all(pause >= 0.2 - SLACK for pause in pauses(server.requests)), pauses(server.requests)


def test_interval_applies_per_stream_override(tmp_path):
    with Server() as server:
        config = {"url": server.url("/any"), "streams": {"a": {"request_sleep_interval_ms": 200}}}
        result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    stream_a = [got for got in server.requests if json.loads(got.body)["id"] < 100]
    assert len(stream_a) == 3
    assert all(pause >= 0.2 - SLACK for pause in pauses(stream_a)), pauses(stream_a)


# max_requests_per_second: one rate for every request in flight and every stream that
# takes the top-level setting, with the pause above


def test_rate_is_shared_by_all_requests_in_flight(tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/items/#{id}"),  # one URL per record: nothing keeps them apart
            "max_requests_per_second": 10,
            "max_concurrency": 8,
        }
        result = run_target(config, items_input(20), tmp_path)

    assert result.returncode == 0, result.stderr
    arrivals = sorted(got.at for got in server.requests)
    assert len(arrivals) == 20
    assert spaced(arrivals, 0.1), arrivals
    assert sum(at < arrivals[0] + 0.5 for at in arrivals) <= 6  # never a burst


def interleaved(n: int, schemas: dict[int, dict] | None = None) -> str:
    """Records 1..n alternating between streams `a` and `b`; `schemas[i]` is sent before i."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": s, "schema": schema} for s in ("a", "b")]
    for i in range(1, n + 1):
        stream = "ab"[i % 2]
        if schemas and i in schemas:
            lines.append({"type": "SCHEMA", "stream": stream, "schema": schemas[i]})
        lines.append({"type": "RECORD", "stream": stream, "record": {"id": i}})
    return "\n".join(json.dumps(line) for line in lines) + "\n"


def test_the_top_level_rate_is_one_budget_for_every_stream(tmp_path):
    with Server() as server:
        config = {"url": server.url("/items/#{id}"), "max_requests_per_second": 10}
        result = run_target(config, interleaved(30), tmp_path)

    assert result.returncode == 0, result.stderr
    arrivals = sorted(got.at for got in server.requests)
    assert len(arrivals) == 30
    assert spaced(arrivals, 0.1), arrivals  # 30 requests at 10/s, two streams


def test_the_rate_is_kept_across_a_schema_change(tmp_path):
    changed = {"type": "object", "properties": {"id": {"type": "integer"}, "x": {}}}
    with Server() as server:
        config = {"url": server.url("/items/#{id}"), "max_requests_per_second": 5}
        result = run_target(config, interleaved(10, {4: changed, 5: changed}), tmp_path)

    assert result.returncode == 0, result.stderr
    arrivals = sorted(got.at for got in server.requests)
    assert len(arrivals) == 10
    assert spaced(arrivals, 0.2), arrivals


@pytest.mark.parametrize(
    ("rate", "pause"),
    [(20, 0.2), (4, 0.05)],
    ids=["pause-wins", "rate-wins"],
)
def test_rate_and_pause_apply_together(tmp_path, rate, pause):
    settings = {"max_requests_per_second": rate, "request_sleep_interval_ms": int(pause * 1000)}
    with Server() as server:
        result = run_target({"url": server.url("/in"), **settings}, items_input(4), tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 4
    assert all(p >= pause - SLACK for p in pauses(server.requests)), pauses(server.requests)
    assert spaced([got.at for got in server.requests], 1 / rate)


def test_rate_applies_per_stream_override(tmp_path):
    with Server() as server:
        config = {"url": server.url("/any"), "streams": {"a": {"max_requests_per_second": 5}}}
        result = run_target(config, data_file("two_streams.singer"), tmp_path)

    assert result.returncode == 0, result.stderr
    arrivals_a = [got.at for got in server.requests if json.loads(got.body)["id"] < 100]
    assert len(arrivals_a) == 3
    assert spaced(arrivals_a, 0.2), arrivals_a


@pytest.mark.parametrize("rate", [0, -1, "fast"])
def test_a_rate_that_is_not_a_positive_number_is_refused(tmp_path, rate):
    with Server() as server:
        config = {"url": server.url("/in"), "streams": {"items": {"max_requests_per_second": rate}}}
        result = run_target(config, items_input(1), tmp_path)

    assert result.returncode != 0
    assert "max_requests_per_second" in result.stderr
    assert server.requests == []


# 429 answers: fewer requests in flight, then growing back one by one


class FirstWaveThrottled:
    """Holds the first `wave` requests until all are in flight, answers them 429, then
    answers every request 200 after `delay`."""

    def __init__(self, wave: int, delay: float) -> None:
        self.wave = threading.Barrier(wave, timeout=10)
        self.size = wave
        self.delay = delay
        self.arrived = 0
        self.lock = threading.Lock()

    def __call__(self, got: Got):
        with self.lock:
            self.arrived += 1
            in_wave = self.arrived <= self.size
        if in_wave:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.wave.wait()
            return 429, {"Retry-After": "0"}, "slow down"
        time.sleep(self.delay)
        return 200, {}, "ok"


def test_429_answers_halve_the_requests_in_flight_then_they_grow_back(tmp_path):
    with Server(FirstWaveThrottled(wave=8, delay=0.2)) as server:
        config = {
            "url": server.url("/items/#{id}"),
            "max_concurrency": 8,
            "max_backoff_seconds": 0.05,
        }
        result = run_target(config, items_input(24), tmp_path)

    assert result.returncode == 0, result.stderr
    wave, after = server.requests[:8], server.requests[8:]
    assert max(got.in_flight for got in wave) == 8
    # Eight 429s took the limit down to one: the retries go one, then two at a time ...
    assert after[0].in_flight == 1
    assert max(got.in_flight for got in after[:3]) <= 2
    # ... and each success lets one more in.
    assert max(got.in_flight for got in after) >= 4
    assert sorted(int(got.path.rsplit("/", 1)[1]) for got in after) == list(range(1, 25))
    assert "in-flight limit now 1 (of 8)" in result.stderr


def test_adaptive_limit_halves_on_429_and_grows_by_one_on_success():
    limit = AdaptiveLimit(8, "test")
    for expected in (4, 2, 1, 1):
        limit.answered(429)
        assert limit.limit == expected
    for status in (500, 401, 404):
        limit.answered(status)
    assert limit.limit == 1
    for expected in (2, 3, 4, 5, 6, 7, 8, 8):
        limit.answered(200)
        assert limit.limit == expected
    assert AdaptiveLimit.of(1, "one at a time") is None


def test_a_stop_ends_the_wait_for_a_rate_slot():
    rate = RateLimit(0.2)  # one request every 5 s
    stop = threading.Event()
    rate.wait(stop)  # the first starts at once
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        rate.wait(stop)
    assert time.monotonic() - started < 2
