"""rate_limit_redis_url: one max_requests_per_second budget shared by many processes.

Against a real redis-server on a free loopback port (tests/support/redis_server.py),
started with a password so that every run also shows the password is never printed.
"""

import json
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.loopback import Server, items_input
from support.redis_server import PASSWORD, Monitor, RedisServer, free_port
from support.run import RUN_TIMEOUT, error_lines, parse_states, run_target

from target_restapi.delivery.shared_rate import (
    Budget,
    SharedRateLimit,
    derived_key,
    redis_secrets,
    shared_budget,
)
from target_restapi.errors import SettingsError, Stopped

SLACK = 0.005  # clocks: the rate's spacing is a lower bound, never a speed claim


def started_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/run installs it with apt-get on Debian)")
    return RedisServer().start()


@pytest.fixture(scope="module")
def redis_server():
    server = started_redis()
    yield server
    server.stop()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, which the test may kill."""
    server = started_redis()
    yield server
    server.stop()


@pytest.fixture
def monitor(redis_server):
    watching = Monitor(redis_server)
    yield watching
    watching.close()


def records(n, stream="items", first=1, states=False):
    """Singer input: a SCHEMA, records {"id": first..n} and, with `states`, a STATE after each."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]}]
    for i in range(first, n + 1):
        lines.append({"type": "RECORD", "stream": stream, "record": {"id": i}})
        if states:
            lines.append({"type": "STATE", "value": {"bookmark": i}})
    return "\n".join(json.dumps(line) for line in lines) + "\n"


# Three processes against one receiver


def gated(parties):
    """An answer that holds each process's first request (id 0) until all have sent theirs.

    The processes start at different speeds on a loaded machine; from the gate's release
    on, all of them are sending. Returns the answer and the list that gets the release time.
    """
    gate = threading.Barrier(parties, timeout=RUN_TIMEOUT)
    released = []

    def answer(got):
        if got.path.endswith("/0"):
            try:
                if gate.wait() == 0:
                    released.append(time.monotonic())
            except threading.BrokenBarrierError:
                return 503, {}, "the other processes never came"
        return 200, {}, "ok"

    return answer, released


@pytest.mark.parametrize(("shared", "per_process"), [(True, 30), (False, 40)], ids=str)
@pytest.mark.slow
def test_three_processes_share_one_budget(redis_server, tmp_path, shared, per_process):
    answer, released = gated(3)
    with Server(answer) as server:
        configs = [
            {
                "url": server.url(f"/p{n}/#{{id}}"),  # one host and port: one derived key
                "max_requests_per_second": 10,
                **({"rate_limit_redis_url": redis_server.url()} if shared else {}),
            }
            for n in range(3)
        ]
        for n in range(3):
            (tmp_path / f"p{n}").mkdir()
        with ThreadPoolExecutor(3) as pool:
            runs = [
                pool.submit(
                    # Three processes: what is shared goes through Redis, not this process.
                    run_target,
                    config,
                    records(per_process, first=0),
                    tmp_path / f"p{n}",
                    subprocess_run=True,
                )
                for n, config in enumerate(configs)
            ]
            results = [run.result() for run in runs]

    for result in results:
        assert result.returncode == 0, result.stderr
    assert len(server.requests) == 3 * (per_process + 1)
    # Measured at the receiver, past the first second after every process is sending.
    start = released[0] + 1.0
    arrivals = [got.at for got in server.requests if got.at > start]
    rate = len(arrivals) / (max(arrivals) - start)
    if shared:
        assert 9 <= rate <= 11, rate  # within 10% of the budget of 10 a second
    else:
        assert rate > 18, rate  # each keeps its own 10 a second: about 30


# What Redis sees: one EVALSHA per request, on the budget's key


def interleaved(n):
    """Records 1..n alternating between streams `a` and `b`."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    lines = [{"type": "SCHEMA", "stream": s, "schema": schema} for s in ("a", "b")]
    lines += [{"type": "RECORD", "stream": "ab"[i % 2], "record": {"id": i}} for i in range(n)]
    return "\n".join(json.dumps(line) for line in lines) + "\n"


KEY = "target-restapi:http://{host}:{port}"


@pytest.mark.parametrize(
    ("top", "streams", "keys"),
    [
        ({}, {}, {KEY: 6}),
        (
            {},
            {"b": {"url": "http://localhost:{port}/b"}},
            {KEY: 3, KEY.replace("{host}", "localhost"): 3},
        ),
        (
            {"rate_limit_key": "one-api"},
            {"b": {"url": "http://localhost:{port}/b"}},
            {"one-api": 6},
        ),
        ({}, {"b": {"rate_limit_key": "b-budget"}}, {KEY: 3, "b-budget": 3}),
        ({}, {"b": {"max_requests_per_second": 100}}, {KEY: 3, KEY + ":stream:b": 3}),
        (
            {"rate_limit_key": "one-api"},
            {"b": {"max_requests_per_second": 100}},
            {"one-api": 3, "one-api:stream:b": 3},
        ),
    ],
    ids=["derived", "two-hosts", "named-across-hosts", "stream-key", "stream-rate", "named+rate"],
)
def test_the_budget_key(redis_server, monitor, tmp_path, top, streams, keys):
    with Server() as server:
        port = server.port
        streams = json.loads(json.dumps(streams).replace("{port}", str(port)))
        config = {
            "url": server.url("/a"),
            "max_requests_per_second": 200,
            "rate_limit_redis_url": redis_server.url(),
            "streams": streams,
            **top,
        }
        result = run_target(config, interleaved(6), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 6
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(monitor.calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    expected = {key.format(host="127.0.0.1", port=port): n for key, n in keys.items()}
    assert Counter(monitor.keys()) == expected  # one step in Redis per request
    intervals = {key: interval for key, interval in monitor.calls}
    assert float(intervals[next(iter(expected))]) == 1e6 / 200  # microseconds


# Redis down at start, lost mid-run


@pytest.mark.parametrize("why", ["nothing-listens", "wrong-password"])
def test_an_unusable_redis_at_start_stops_before_sending(redis_server, tmp_path, why):
    if why == "nothing-listens":
        url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    else:
        url = redis_server.url(password="wrong-Pw7-secret")
    with Server() as server:
        config = {
            "url": server.url("/items"),
            "max_requests_per_second": 10,
            "rate_limit_redis_url": url,
        }
        result = run_target(config, records(3, states=True), tmp_path)
    assert result.returncode == 1
    assert server.requests == []
    assert result.stdout == ""  # no STATE
    (line,) = error_lines(result.stderr, "Redis cannot be used")
    assert "setting 'rate_limit_redis_url' (redis://***@127.0.0.1:" in line
    for secret in (PASSWORD, "wrong-Pw7-secret"):
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr


def run_in_background(config, text, tmp_path):
    results = []
    thread = threading.Thread(  # a run in another thread must be a process of its own
        target=lambda: results.append(run_target(config, text, tmp_path, subprocess_run=True))
    )
    thread.start()
    return thread, results


def kill_after(server_requests, n, redis):
    """Wait (bounded) until the receiver has `n` requests, kill Redis; return when."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(server_requests) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(server_requests) >= n, "the target never sent enough requests"
    redis.stop()
    return time.monotonic()


def test_redis_lost_mid_run_stops_after_the_timeout_sending_nothing_unpaced(own_redis, tmp_path):
    with Server() as server:
        config = {
            "url": server.url("/items/#{id}"),
            "max_requests_per_second": 20,
            "rate_limit_redis_url": own_redis.url(),
            "timeout_seconds": 1,
        }
        thread, results = run_in_background(config, records(200, states=True), tmp_path)
        killed_at = kill_after(server.requests, 5, own_redis)
        thread.join(RUN_TIMEOUT + 5)
    (result,) = results
    assert result.returncode == 1
    late = [got for got in server.requests if got.at > killed_at]
    assert len(late) <= 1  # at most the one whose slot was booked before the kill
    (line,) = error_lines(result.stderr, "did not answer for 1 s")
    assert "setting 'rate_limit_redis_url' (redis://***@127.0.0.1:" in line
    assert "unpaced" in line
    assert len(error_lines(result.stderr, "Redis does not answer")) == 1  # said once
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    delivered = sorted(int(got.path.rsplit("/", 1)[1]) for got in server.requests)
    assert delivered == list(range(1, len(delivered) + 1))
    bookmarks = [state["bookmark"] for state in parse_states(result.stdout)]
    assert bookmarks, "the records delivered before the loss have their STATE"
    assert max(bookmarks) <= len(delivered)  # never past an undelivered record


def test_redis_back_within_the_timeout_lets_the_run_go_on(own_redis, live_target):
    with Server() as server:
        target = live_target(
            {
                "url": server.url("/items/#{id}"),
                "max_requests_per_second": 20,
                "rate_limit_redis_url": own_redis.url(),
                "timeout_seconds": 30,
            }
        )
        target.send(records(20, states=True))
        kill_after(server.requests, 5, own_redis)
        deadline = time.monotonic() + RUN_TIMEOUT
        while "Redis does not answer" not in target.stderr and time.monotonic() < deadline:
            time.sleep(0.01)  # until the target has seen Redis gone
        own_redis.start(port=own_redis.port)  # a restart: its budget and script are gone too
        assert target.finish() == 0, target.stderr
    delivered = sorted(int(got.path.rsplit("/", 1)[1]) for got in server.requests)
    assert delivered == list(range(1, 21))
    assert json.loads(target.lines[-1]) == {"bookmark": 20}
    assert len(error_lines(target.stderr, "Redis does not answer")) == 1
    assert len(error_lines(target.stderr, "Redis answers again")) == 1
    assert PASSWORD not in target.stderr + "".join(target.lines)


def test_a_dry_run_asks_no_redis(tmp_path):
    config = {
        "url": "http://127.0.0.1:9/items",
        "max_requests_per_second": 10,
        "rate_limit_redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "dry_run": True,
    }
    result = run_target(config, items_input(2), tmp_path)
    assert result.returncode == 0, result.stderr


# Incomplete settings: one line naming the setting, before anything is sent


@pytest.mark.parametrize(
    ("settings", "marker"),
    [
        ({"rate_limit_key": "one-api"}, "settings: setting 'rate_limit_key' names a budget"),
        (
            {"streams": {"items": {"rate_limit_key": "one-api"}}},
            "stream 'items': setting 'rate_limit_key' names a budget",
        ),
        (
            {"rate_limit_redis_url": f"http://:{PASSWORD}@127.0.0.1:1/0"},
            "setting 'rate_limit_redis_url' is 'http://***@127.0.0.1:1/0'; use a redis://",
        ),
        (
            {"rate_limit_redis_url": "redis://127.0.0.1:1/0", "max_requests_per_second": None},
            "shares 'max_requests_per_second', which is not set",
        ),
    ],
    ids=["key-without-redis", "stream-key-without-redis", "scheme", "no-rate"],
)
def test_an_incomplete_shared_budget_is_refused_at_start(tmp_path, settings, marker):
    with Server() as server:
        config = {"url": server.url("/items"), "max_requests_per_second": 10, **settings}
        config = {name: value for name, value in config.items() if value is not None}
        result = run_target(config, records(2), tmp_path)
    assert result.returncode == 1
    assert server.requests == []
    assert len(error_lines(result.stderr, marker)) == 1
    assert PASSWORD not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_host_from_records_needs_a_named_budget():
    # Checked without a run: whether such a url is accepted at all is another setting's say.
    values = {
        "url": "https://#{tenant}.example.com/items",
        "max_requests_per_second": 10,
        "rate_limit_redis_url": "redis://127.0.0.1:1/0",
        "timeout_seconds": 5,
    }
    with pytest.raises(SettingsError, match=r"takes its host from records.*set 'rate_limit_key'"):
        shared_budget(values, "settings")
    budget = shared_budget({**values, "rate_limit_key": "example-api"}, "settings")
    assert budget is not None and budget.key == "example-api"


# The limit itself, in one process


def limit(redis_server, key, per_second):
    return SharedRateLimit(Budget(redis_server.url(), key, per_second, 5), "settings")


def test_two_limits_on_one_key_take_turns(redis_server):
    first, second = limit(redis_server, "turns", 5), limit(redis_server, "turns", 5)
    stop = threading.Event()
    started = time.monotonic()
    first.wait(stop)
    second.wait(stop)  # as another process would: the next slot, 0.2 s later
    first.wait(stop)
    assert time.monotonic() - started >= 0.4 - SLACK


def test_an_idle_budget_expires(redis_server):
    limit(redis_server, "idle", 0.1).wait(threading.Event())  # the next slot is 10 s away
    assert 0 < redis_server.client().pttl("idle") <= 10_000


def test_a_stop_ends_the_wait_for_a_shared_slot(redis_server):
    rate = limit(redis_server, "stop", 0.2)  # one request every 5 s
    stop = threading.Event()
    rate.wait(stop)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        rate.wait(stop)
    assert time.monotonic() - started < 2


# The derived key and the secrets (pure)

hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z0-9-]{1,8}){0,2}", fullmatch=True)
paths = st.text(st.sampled_from("abc/-_?=&#{}"), max_size=12)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=paths,
    other_path=paths,
    password=st.text(st.sampled_from("pw9!~$"), min_size=3, max_size=8),
)
def test_the_derived_key_names_scheme_host_and_port_only(
    scheme, host, port, path, other_path, password
):
    at = f":{port}" if port else ""
    key = derived_key(f"{scheme}://{host}{at}/{path}")
    default = {"http": 80, "https": 443}[scheme]
    assert key == f"target-restapi:{scheme}://{host}:{port or default}"
    assert derived_key(f"{scheme.upper()}://u:{password}@{host.upper()}{at}/{other_path}") == key
    assert password not in key
    assert derived_key(f"{scheme}://{host}:{(port or default) % 65535 + 1}/{path}") != key
    assert derived_key(f"{scheme}://#{{tenant}}.{host}{at}/{path}") is None
    assert derived_key(f"{scheme}://{host}{at}?to=#{{tenant}}") == key


@given(url=st.text(st.sampled_from("ab:/@[]?#{}%.1"), max_size=30))
def test_any_url_gives_a_key_or_one_settings_error(url):
    key = derived_key(url)
    assert key is None or key.startswith("target-restapi:")
    values = {"timeout_seconds": 1, "max_requests_per_second": 1}
    for setting in ("url", "rate_limit_redis_url"):
        try:
            shared_budget({**values, "rate_limit_redis_url": "redis://r", setting: url}, "settings")
        except SettingsError as exc:
            assert str(exc).startswith("settings: setting '")
    redis_secrets({"rate_limit_redis_url": url})  # never raises: it runs before any check


def test_the_redis_url_password_is_a_secret():
    assert redis_secrets({"rate_limit_redis_url": "redis://127.0.0.1:6379/0"}) == []
    url = "rediss://user:p%40ss@redis.example:6380/0"
    assert set(redis_secrets({"rate_limit_redis_url": url})) == {url, "p%40ss", "p@ss"}
    url = "redis://redis.example/0?password=q-secret"
    assert set(redis_secrets({"rate_limit_redis_url": url})) == {url, "q-secret"}
