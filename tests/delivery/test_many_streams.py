"""Many streams share the run's connections and threads; the same URL is one at a time.

2,500 streams (more than twice the file descriptors) run under `ulimit -n 1024` against
a loopback server: every record is delivered, and the target's threads (sampled from
/proc) and memory (ru_maxrss) stay bounded whatever the number of streams. Two streams
PUT to the same URLs with a slow server: never two requests for one URL in flight, and
each URL's updates in input order. Shared connections keep no cookies, so none crosses
from one stream to another.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support.loopback import Server
from support.run import NO_RETRY, RUN_TIMEOUT, TARGET, clean_env, run_target, write_config

STREAMS = 2_500  # more than twice FD_LIMIT: a descriptor per stream could not run
FD_LIMIT = 1024
MOST_THREADS = 16  # main, watchdog, progress, 4 senders (max_concurrency), a few more
MOST_MEMORY_MB = 600  # measured: about 300 MB at 10,000 streams (the SDK's sink per stream)

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def schema(stream: str) -> dict:
    properties = {"s": {"type": "string"}, "id": {"type": "integer"}}
    return {"type": "SCHEMA", "stream": stream, "schema": {"properties": properties}}


def record(stream: str, i: int) -> dict:
    return {"type": "RECORD", "stream": stream, "record": {"s": stream, "id": i}}


def many_streams(n: int) -> bytes:
    """Each stream: its SCHEMA and one or two records; streams interleave."""
    lines = []
    for k in range(n):
        name = f"s{k}"
        lines += [schema(name), record(name, 1)]
        if k % 2:
            lines.append(record(name, 2))
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def threads_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # it has ended
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line[:8] == "Threads:"))


def limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.mark.slow
def test_thousands_of_streams_under_ulimit_1024_with_flat_threads_and_memory(tmp_path):
    data = tmp_path / "input.singer"
    data.write_bytes(many_streams(STREAMS))
    with Server(nodelay=True) as server:
        config = {"url": server.url("/#{s}/#{id}"), "max_concurrency": 4, **NO_RETRY}
        config_path = write_config(config, tmp_path)
        with data.open("rb") as stdin, (tmp_path / "stderr").open("wb") as stderr:
            proc = subprocess.Popen(
                [*TARGET, "--config", str(config_path)],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=clean_env(),
                preexec_fn=limit_fds,
            )
        peak = 0
        sampling = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not sampling.wait(0.02):
                peak = max(peak, threads_of(proc.pid) or 0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = threading.Timer(2 * RUN_TIMEOUT, os.kill, (proc.pid, signal.SIGKILL))
        timer.start()  # a guard against a hung run, never an assertion about speed
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampling.set()
            sampler.join(timeout=5)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = (tmp_path / "stderr").read_text()

        assert proc.returncode == 0, stderr[-2000:]
        paths = sorted(got.path for got in server.requests)
    expected = sorted(f"/s{k}/{i}" for k in range(STREAMS) for i in (1, 2)[: 1 + k % 2])
    assert paths == expected
    assert 0 < peak <= MOST_THREADS, f"{peak} threads at the peak"
    assert usage.ru_maxrss / 1024 < MOST_MEMORY_MB, f"{usage.ru_maxrss / 1024:.0f} MB at the peak"


def test_two_streams_never_send_the_same_url_at_once_and_keep_input_order(tmp_path):
    def slow(got):  # the first update of each user is slow: a later one must wait for it
        time.sleep(0.3 if json.loads(got.body)["version"] == 0 else 0.05)
        return 200, {}, "ok"

    def line(stream: str, user: int, version: int) -> dict:
        return {"type": "RECORD", "stream": stream, "record": {"id": user, "version": version}}

    properties = {"id": {"type": "integer"}, "version": {"type": "integer"}}
    lines = [
        {"type": "SCHEMA", "stream": name, "schema": {"properties": properties}}
        for name in ("users_a", "users_b")
    ]
    for version in range(6):  # the streams take turns updating users 1 and 2
        for user in (1, 2):
            lines.append(line(("users_a", "users_b")[version % 2], user, version))
    text = "".join(json.dumps(item) + "\n" for item in lines)
    with Server(slow, nodelay=True) as server:
        config = {
            "url": server.url("/users/#{id}"),
            "method": "PUT",
            "max_concurrency": 4,
            **NO_RETRY,
        }
        result = run_target(config, text, tmp_path)
        got = list(server.requests)

    assert result.returncode == 0, result.stderr
    assert len(got) == 12
    for user in (1, 2):
        mine = [g for g in got if g.path == f"/users/{user}"]
        assert [json.loads(g.body)["version"] for g in mine] == list(range(6))
        for earlier, later in itertools.pairwise(mine):
            assert later.at >= earlier.done, f"two PUTs to /users/{user} were in flight at once"


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_a_response_file_per_stream_for_more_streams_than_open_files_allow(tmp_path, file_format):
    streams = 1_200  # each has its own response file: more than ulimit -n 1024
    folder = tmp_path / "responses"
    with Server(nodelay=True) as server:
        config = {
            "url": server.url("/#{s}/#{id}"),
            "save_responses": True,
            "response_file_path": str(folder),
            "response_file_format": file_format,
            **NO_RETRY,
        }
        config_path = write_config(config, tmp_path)
        proc = subprocess.run(
            [*TARGET, "--config", str(config_path)],
            input=many_streams(streams),
            capture_output=True,
            env=clean_env(),
            preexec_fn=limit_fds,
            timeout=2 * RUN_TIMEOUT,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    files = sorted(folder.iterdir())
    assert len(files) == streams
    for path in files:
        text = path.read_text()
        if file_format == "json":
            entries = json.loads(text)
        else:
            entries = [json.loads(line) for line in text.splitlines()]
        stream = entries[0]["stream"]
        assert path.name.startswith(f"{stream}-")
        ids = [1, 2][: 1 + int(stream[1:]) % 2]
        assert [e["url"].rsplit("/", 1)[1] for e in entries] == [str(i) for i in ids]
        assert [e["request"] for e in entries] == list(range(1, len(ids) + 1))


def test_a_cookie_set_for_one_stream_never_goes_out_with_another_streams_requests(tmp_path):
    def set_cookie(got):
        return 200, {"Set-Cookie": f"sid={got.path.strip('/').replace('/', '-')}; Path=/"}, "ok"

    lines = [schema("a"), record("a", 1), schema("b"), record("b", 1), record("a", 2)]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    with Server(set_cookie, nodelay=True) as server:
        config = {
            "url": server.url("/#{s}/#{id}"),
            "streams": {"b": {"username": "bob", "password": "b-secret"}},
            **NO_RETRY,
        }
        result = run_target(config, text, tmp_path)
        got = list(server.requests)

    assert result.returncode == 0, result.stderr
    assert [g.path for g in got] == ["/a/1", "/b/1", "/a/2"]
    assert [g.headers.get("cookie") for g in got] == [None, None, None]
