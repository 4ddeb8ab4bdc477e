"""BATCH messages: the records of the manifest's files travel like RECORD messages.

Validated, shaped, counted and sequenced alike; a STATE after a BATCH waits for them; a
file that cannot be read or decoded ends the run with one line naming it.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from support.record_paths import lines, no_traceback, record, schema, state, the_summary
from support.run import NO_RETRY, RUN_TIMEOUT, TARGET, clean_env, run_target, write_config
from werkzeug import Response


def batch(*files: Path | str, gzipped: bool, stream: str = "users") -> dict:
    return {
        "type": "BATCH",
        "stream": stream,
        "encoding": {"format": "jsonl", "compression": "gzip" if gzipped else None},
        "manifest": [f if isinstance(f, str) else f.as_uri() for f in files],
    }


def batch_file(path: Path, ids: range, *, gzipped: bool) -> Path:
    text = "".join(json.dumps(record(i)["record"]) + "\n" for i in ids).encode()
    path.write_bytes(gzip.compress(text) if gzipped else text)
    return path


def sent_ids(recorder) -> list[int]:
    out = []
    for body in recorder.bodies:
        out += [r["id"] for r in body] if isinstance(body, list) else [body["id"]]
    return out


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_batch_records_are_delivered_in_order_before_the_next_state(
    recorder, httpserver, tmp_path, gzipped, mode
):
    one = batch_file(tmp_path / "a.jsonl", range(2, 5), gzipped=gzipped)
    two = batch_file(tmp_path / "b.jsonl", range(5, 9), gzipped=gzipped)
    config = {"url": httpserver.url_for("/users"), "request_mode": mode, "batch_size": 3}
    text = lines(schema(), record(1), batch(one, two, gzipped=gzipped), state(1), record(9))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == list(range(1, 10))
    assert result.states == [{"at": 1}]
    total = the_summary(result.stderr)["total"]
    assert (total["received"], total["delivered"]) == (9, 9)


def test_a_state_after_a_batch_waits_for_its_records(recorder, httpserver, tmp_path):
    recorder.respond = lambda seen: Response("no", status=400) if seen.json()["id"] == 3 else None
    one = batch_file(tmp_path / "a.jsonl", range(2, 5), gzipped=True)
    config = {"url": httpserver.url_for("/users"), **NO_RETRY}
    text = lines(schema(), record(1), state(1), batch(one, gzipped=True), state(2))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert result.states == [{"at": 1}]
    assert sent_ids(recorder) == [1, 2, 3]
    no_traceback(result.stderr)
    counts = the_summary(result.stderr)["total"]
    assert (counts["received"], counts["delivered"], counts["failed"]) == (3, 2, 1)


def test_batch_records_are_checked_against_the_schema(recorder, httpserver, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": 2, "name": "ok"}\n{"id": "three", "name": "bad"}\n')
    config = {"url": httpserver.url_for("/users"), "request_mode": "batch"}
    text = lines(schema(), record(1), state(1), batch(path, gzipped=False), state(2))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert result.states == [{"at": 1}]
    [error] = [line for line in result.stderr.splitlines() if "does not match" in line]
    assert "input line 4" in error
    assert f"BATCH file '{path.as_uri()}' line 2" in error
    assert sent_ids(recorder) == [1, 2]  # the good records read before it are delivered
    no_traceback(result.stderr)


@pytest.mark.parametrize(
    ("content", "gzipped", "says"),
    [
        (None, False, "cannot be read"),
        (b'{"id": 2, "name": "x"}\n{"id": 3, "na', False, "not valid JSON"),
        (b'{"id": 2, "name": "x"}\n', True, "cannot be decoded"),  # not gzip at all
        (gzip.compress(b'{"id": 2, "name": "x"}\n' * 50)[:-30], True, "cannot be decoded"),
    ],
    ids=["missing", "bad-json", "not-gzip", "truncated-gzip"],
)
def test_a_file_that_cannot_be_read_is_one_line_and_no_state_past_it(
    recorder, httpserver, tmp_path, content, gzipped, says
):
    good = batch_file(tmp_path / "good.jsonl", range(10, 12), gzipped=gzipped)
    bad = tmp_path / "bad.jsonl"
    if content is not None:
        bad.write_bytes(content)
    config = {"url": httpserver.url_for("/users"), "request_mode": "batch"}
    text = lines(schema(), record(1), state(1), batch(good, bad, gzipped=gzipped), state(2))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 1
    assert result.states == [{"at": 1}]
    errors = [line for line in result.stderr.splitlines() if says in line]
    assert len(errors) == 1, result.stderr
    assert "input line 4" in errors[0]
    assert f"BATCH file '{bad.as_uri()}'" in errors[0]
    assert set(sent_ids(recorder)) >= {1, 10, 11}  # read before the fault: delivered
    no_traceback(result.stderr)
    the_summary(result.stderr)


def test_batch_config_storage_root_is_where_files_are_read(recorder, httpserver, tmp_path):
    """As in the SDK: with a storage root, a manifest entry's file name is read under it."""
    root = tmp_path / "root"
    root.mkdir()
    batch_file(root / "part-1.jsonl", range(1, 4), gzipped=False)
    config = {
        "url": httpserver.url_for("/users"),
        "batch_config": {
            "encoding": {"format": "jsonl"},
            "storage": {"root": root.as_uri()},
        },
    }
    text = lines(schema(), batch("s3://elsewhere/part-1.jsonl", gzipped=False), state(1))

    result = run_target(config, text, tmp_path)

    assert result.returncode == 0, result.stderr
    assert sent_ids(recorder) == [1, 2, 3]
    assert result.states == [{"at": 1}]


def test_an_unsupported_encoding_is_one_line(recorder, httpserver, tmp_path):
    config = {"url": httpserver.url_for("/users")}
    message = {**batch(tmp_path / "x.parquet", gzipped=False), "encoding": {"format": "parquet"}}
    result = run_target(config, lines(schema(), message), tmp_path)

    assert result.returncode == 1
    assert "parquet" in result.stderr and "input line 2" in result.stderr
    no_traceback(result.stderr)


def test_about_declares_the_batch_capability_and_setting():
    about = json.loads(
        subprocess.run(
            [*TARGET, "--about", "--format=json"],
            capture_output=True,
            check=True,
            env=clean_env(),
            timeout=RUN_TIMEOUT,
        ).stdout
    )
    assert "batch" in about["capabilities"]
    assert "batch_config" in about["settings"]["properties"]


def _open_for_writing(fifo: Path) -> int:
    """Open a FIFO once the target opened it for reading (bounded wait)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_batch_file_is_streamed_not_read_whole(recorder, httpserver, tmp_path):
    """A record is sent while its file is still being written: the file is read by lines."""
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    config = {"url": httpserver.url_for("/users")}
    singer = tmp_path / "input.singer"
    singer.write_text(lines(schema(), batch(fifo, gzipped=False), state(1)))
    with singer.open("rb") as stdin:
        proc = subprocess.Popen(
            [*TARGET, "--config", str(write_config(config, tmp_path))],
            stdin=stdin,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(),
        )
    try:
        fd = _open_for_writing(fifo)
        os.set_blocking(fd, True)
        os.write(fd, b'{"id": 1, "name": "first"}\n')
        deadline = time.monotonic() + RUN_TIMEOUT
        while not recorder.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert [seen.json()["id"] for seen in recorder.requests] == [1]
        os.write(fd, b'{"id": 2, "name": "second"}\n')
        os.close(fd)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()
        proc.wait(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, stderr.decode()
    assert [seen.json()["id"] for seen in recorder.requests] == [1, 2]
    assert json.loads(stdout) == {"at": 1}


def test_batch_records_of_a_mapped_stream_take_the_stream_maps(recorder, httpserver, tmp_path):
    path = batch_file(tmp_path / "a.jsonl", range(1, 3), gzipped=False)
    config = {
        "url": httpserver.url_for("/users"),
        "stream_maps": {"users": {"upper": "name.upper()"}},
    }
    result = run_target(config, lines(schema(), batch(path, gzipped=False), state(1)), tmp_path)

    assert result.returncode == 0, result.stderr
    assert [body["upper"] for body in recorder.bodies] == ["N1", "N2"]
    assert result.states == [{"at": 1}]
