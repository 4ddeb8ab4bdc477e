"""request_sleep_interval_ms: the server sees requests at least that far apart."""

from itertools import pairwise

import pytest
from conftest import data_file, run_target

# Arrival gaps are measured by the server's handler; the interval is a lower bound set by the
# target, so this checks behaviour (the pause happens), not speed. A tiny slack covers clocks.
SLACK = 0.005


@pytest.mark.parametrize(
    ("settings", "requests"),
    [
        ({"request_mode": "single"}, 3),
        ({"request_mode": "batch", "batch_size": 2}, 3),
    ],
    ids=["single", "batch"],
)
def test_requests_are_spaced_by_the_interval(recorder, httpserver, tmp_path, settings, requests):
    config = {
        "url": httpserver.url_for("/users"),
        "request_sleep_interval_ms": 200,
        **settings,
    }
    # users.singer holds 5 records; keep the single-mode run to 3 requests.
    lines = data_file("users.singer").read_text().splitlines()
    text = "\n".join(lines[:4] if settings["request_mode"] == "single" else lines) + "\n"
    result = run_target(config, text, tmp_path)
    assert result.returncode == 0, result.stderr
    arrivals = [seen.at for seen in recorder.requests]
    assert len(arrivals) == requests
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert all(gap >= 0.2 - SLACK for gap in gaps), gaps


def test_interval_applies_per_stream_override(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/any"),
        "streams": {"a": {"request_sleep_interval_ms": 200}},
    }
    result = run_target(config, data_file("two_streams.singer"), tmp_path)
    assert result.returncode == 0, result.stderr
    arrivals_a = [seen.at for seen in recorder.requests if seen.json()["id"] < 100]
    assert len(arrivals_a) == 3
    gaps = [later - earlier for earlier, later in pairwise(arrivals_a)]
    assert all(gap >= 0.2 - SLACK for gap in gaps), gaps
