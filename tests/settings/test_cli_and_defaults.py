"""Command line (`--input`, `--about`), setting defaults, backoff waits, SDK flattening."""

from __future__ import annotations

import json
import subprocess
from itertools import islice, pairwise

import pytest
from support.run import RUN_TIMEOUT, TARGET, clean_env, parse_states, run_target, write_config

from target_restapi.delivery.retry import RetryPolicy


def singer(stream: str, records: list[dict], schema: dict | None = None) -> str:
    """A SCHEMA, the records, and a STATE, as Singer lines."""
    schema = schema or {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema}]
    lines += [{"type": "RECORD", "stream": stream, "record": record} for record in records]
    lines.append({"type": "STATE", "value": {"done": stream}})
    return "".join(json.dumps(line) + "\n" for line in lines)


# --input


def test_input_option_reads_messages_from_a_file(recorder, httpserver, tmp_path):
    path = tmp_path / "input.singer"
    path.write_text(singer("users", [{"id": n} for n in (1, 2, 3)]))
    cfg = write_config({"url": httpserver.url_for("/users")}, tmp_path)
    proc = subprocess.run(
        [*TARGET, "--config", str(cfg), "--input", str(path)],
        stdin=subprocess.DEVNULL,  # nothing to read there: the records come from the file
        capture_output=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert recorder.bodies == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert parse_states(proc.stdout.decode()) == [{"done": "users"}]


# Defaults


@pytest.fixture(scope="module")
def about_settings() -> dict:
    """The settings schema's properties as `--about --format=json` prints them."""
    about = subprocess.run(
        [*TARGET, "--about", "--format=json"],
        capture_output=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=True,
    )
    return json.loads(about.stdout)["settings"]["properties"]


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("timeout_seconds", 60),
        ("max_backoff_seconds", 60),
        ("batch_size", 100),
        ("request_mode", "single"),
        ("method", "POST"),
    ],
)
def test_about_shows_the_setting_defaults(about_settings, name, default):
    assert about_settings[name].get("default") == default


def test_batch_size_defaults_to_100_records_per_request(recorder, httpserver, tmp_path):
    records = [{"id": n} for n in range(1, 251)]
    config = {"url": httpserver.url_for("/users"), "request_mode": "batch"}
    result = run_target(config, singer("users", records), tmp_path)
    assert result.returncode == 0, result.stderr
    assert [len(body) for body in recorder.bodies] == [100, 100, 50]
    assert [r["id"] for body in recorder.bodies for r in body] == list(range(1, 251))


# Backoff waits (pure: no I/O)

SAMPLES = 400


def sample_waits(policy: RetryPolicy, count: int) -> list[list[float]]:
    """`SAMPLES` runs of the policy's first `count` waits, grouped by position n."""
    runs = [list(islice(policy.waits(), count)) for _ in range(SAMPLES)]
    return [list(column) for column in zip(*runs, strict=True)]


def test_backoff_waits_stay_within_the_exponential_bound_and_the_cap():
    cap = 3.0  # 0.5 * 2**n reaches it at n = 3
    for n, waits in enumerate(sample_waits(RetryPolicy(max_backoff_seconds=cap), 8)):
        bound = min(cap, 0.5 * 2**n)
        assert all(0 <= wait <= bound for wait in waits), (n, bound, max(waits))


def test_backoff_waits_grow_until_the_cap():
    cap = 3.0
    highest = [max(waits) for waits in sample_waits(RetryPolicy(max_backoff_seconds=cap), 8)]
    # Full jitter spreads each wait over [0, bound]: with 400 samples the largest comes
    # close to the bound, so it grows while the bound doubles, then stays at the cap.
    assert all(a < b for a, b in pairwise(highest[:4])), highest
    assert all(0.8 * cap < high <= cap for high in highest[4:]), highest


def test_every_backoff_wait_is_jittered_up_to_its_bound():
    """The first wait too: [0, 0.5] s, not always 0."""
    by_n = sample_waits(RetryPolicy(max_backoff_seconds=3.0), 8)
    for n, waits in enumerate(by_n):
        assert len(set(waits)) > 1, f"wait {n} is always {waits[0]}: no jitter"
        # 400 uniform samples over [0, bound]: the largest is above 0.8 * bound
        assert max(waits) > 0.8 * min(3.0, 0.5 * 2**n), (n, max(waits))


def test_backoff_waits_never_exceed_a_small_cap():
    by_n = sample_waits(RetryPolicy(max_backoff_seconds=0.05), 6)
    assert all(0 <= wait <= 0.05 for waits in by_n for wait in waits)


# Flattening (the SDK's settings)

NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "o": {"type": "object", "properties": {"x": {"type": "integer"}}},
    },
}
NESTED = singer("things", [{"id": 1, "o": {"x": 2}}], NESTED_SCHEMA)


FLAT = {"flattening_enabled": True, "flattening_max_depth": 1}


def sent_records(recorder) -> list:
    """The records the server received, whatever the request mode."""
    return [r for body in recorder.bodies for r in (body if isinstance(body, list) else [body])]


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_flattening_sends_nested_fields_as_flat_keys(recorder, httpserver, tmp_path, mode):
    config = {"url": httpserver.url_for("/things"), "request_mode": mode, **FLAT}
    result = run_target(config, NESTED, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_records(recorder) == [{"id": 1, "o__x": 2}]


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_without_flattening_records_are_sent_nested(recorder, httpserver, tmp_path, mode):
    config = {"url": httpserver.url_for("/things"), "request_mode": mode}
    result = run_target(config, NESTED, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sent_records(recorder) == [{"id": 1, "o": {"x": 2}}]
