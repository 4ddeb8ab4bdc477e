"""Faults nobody planned for still end the run with one line, exit 1, no STATE past them.

The target runs as a subprocess whose code is patched before it starts (see PRELUDE):
an encoder that raises, a body that cannot be finished, a socket error class neither
urllib3 nor requests wraps. The wire itself is never mocked: requests reach a real
loopback server, and the fault fires only for the record named "boom".
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.record_paths import lines, no_traceback, record, schema, state, the_summary
from support.run import RUN_TIMEOUT, Result, clean_env, parse_states, write_config

PRELUDE = """
import os

FAULT = os.environ["FAULT"]


class Weird(Exception):
    pass


if FAULT == "encoder":
    import target_restapi.shaping.shapers as shaping

    encode = shaping.encode_json

    def faulty_encode(value):
        if "boom" in repr(value):
            raise ValueError("the encoder fell over")
        return encode(value)

    shaping.encode_json = faulty_encode
elif FAULT == "body":
    from target_restapi.shaping.bodies import Body

    finish = Body.finish

    def faulty_finish(self):
        data = finish(self)
        if b"boom" in data:
            raise OSError(28, "No space left on device")
        return data

    Body.finish = faulty_finish
elif FAULT in ("socket-value", "socket-weird"):
    import urllib3.connection

    send = urllib3.connection.HTTPConnection.request

    def faulty_request(self, method, url, body=None, *args, **kwargs):
        if body is not None and b"boom" in bytes(body):
            raise ValueError("bad socket state") if FAULT == "socket-value" else Weird("?!")
        return send(self, method, url, body, *args, **kwargs)

    urllib3.connection.HTTPConnection.request = faulty_request

from target_restapi.target import TargetRestApi

TargetRestApi.cli()
"""
SECRET = "pw-Unexpected-7"
INPUT = lines(
    schema(),
    record(1),
    record(2),
    state(1),
    record(3, name="boom"),
    record(4),
    state(2),
)


def run_with_fault(fault: str, config: dict, tmp_path) -> Result:
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE, "--config", str(write_config(config, tmp_path))],
        input=INPUT.encode(),
        capture_output=True,
        env=clean_env(FAULT=fault),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    return Result(proc.returncode, parse_states(stdout), stdout, stderr)


def url_with_password(httpserver) -> str:
    return httpserver.url_for("/u").replace("://", f"://bob:{SECRET}@", 1)


@pytest.mark.parametrize(
    ("fault", "error", "extra"),
    [
        ("encoder", "ValueError", {"static_fields": {"source": "tap"}}),
        ("body", "OSError", {}),
        ("socket-value", "ValueError", {}),
        ("socket-weird", "Weird", {}),
    ],
)
@pytest.mark.parametrize("max_concurrency", [1, 3])
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_an_unplanned_fault_is_one_line_naming_stream_and_request(
    recorder, httpserver, tmp_path, fault, error, extra, max_concurrency, mode
):
    config = {
        "url": url_with_password(httpserver),
        "request_mode": mode,
        "max_concurrency": max_concurrency,
        "fail_on_error": False,  # not a delivery failure to tolerate: the run still stops
        **extra,
    }

    result = run_with_fault(fault, config, tmp_path)

    assert result.returncode == 1
    no_traceback(result.stderr)
    assert {"at": 2} not in result.states
    [line] = [line for line in result.stderr.splitlines() if f"unexpected {error}" in line]
    assert "stream 'users': POST http://" in line
    assert "/u" in line and SECRET not in result.stderr
    assert all(r["name"] != "boom" for body in recorder.bodies for r in _records(body))
    the_summary(result.stderr)


def _records(body) -> list[dict]:
    if isinstance(body, list):
        return body
    return [body]


def test_an_unplanned_fault_in_a_stream_map_is_one_line(recorder, httpserver, tmp_path):
    config = {
        "url": httpserver.url_for("/u"),
        "stream_maps": {"users": {"name": "int(record['name'])"}},  # "n1" is no int
    }
    text = lines(schema(), state(0), record(1), state(1))

    proc = subprocess.run(
        [sys.executable, "-m", "target_restapi", "--config", str(write_config(config, tmp_path))],
        input=text.encode(),
        capture_output=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )

    stderr = proc.stderr.decode()
    assert proc.returncode == 1
    no_traceback(stderr)
    assert parse_states(proc.stdout.decode()) == [{"at": 0}]
    [line] = [line for line in stderr.splitlines() if "ValueError" in line]
    assert "input line 3" in line
    assert recorder.requests == []
