"""Error answers and failed connections are saved before the run goes on or ends."""

import json
import socket

import pytest
from support.responses import (
    FORMATS,
    ORDER_KEYS,
    ORDERS,
    ids_of,
    local_files,
    memory_folder,
    parse_entries,
    read_local,
    read_memory,
    run_in_process,
)
from support.run import NO_RETRY, run_target
from werkzeug import Response

from target_restapi.errors import TargetError


def saving(url: str, folder: str, fmt: str = "jsonl", **settings) -> dict:
    return {
        "url": url,
        "save_responses": True,
        "response_file_path": folder,
        "response_file_format": fmt,
        **NO_RETRY,
        **settings,
    }


def answering(statuses: dict[int, Response]):
    """Answer the request that carries one of these ids with its error answer."""

    def respond(seen):
        for i in ids_of(seen):
            if i in statuses:
                return statuses[i]
        return Response('{"ok": true}', content_type="application/json")

    return respond


def closed_port_url(path: str = "/orders") -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# fail_on_error false: every answer is saved, the run goes on


@pytest.mark.parametrize("fmt", FORMATS)
def test_error_answers_are_saved_with_status_and_body_when_the_run_goes_on(
    recorder, httpserver, tmp_path, fmt
):
    recorder.respond = answering(
        {
            2: Response("boom", status=500),
            4: Response('{"error": "bad total"}', status=422, content_type="application/json"),
        }
    )
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), fmt, fail_on_error=False)
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 0, result.stderr
    entries = read_local(folder, fmt=fmt)
    assert [(e["request"], e["keys"], e["status"]) for e in entries] == [
        (1, ORDER_KEYS[1], 200),
        (2, ORDER_KEYS[2], 500),
        (3, ORDER_KEYS[3], 200),
        (4, ORDER_KEYS[4], 422),
        (5, ORDER_KEYS[5], 200),
    ]
    assert entries[1]["body"] == "boom"
    assert entries[3]["body"] == {"error": "bad total"}
    assert entries[0]["body"] == {"ok": True}
    for failed in (entries[1], entries[3]):
        assert failed["error"], "an error answer's entry says what went wrong"
        assert isinstance(failed["elapsed_ms"], int | float)
        assert "content-type" in {name.lower() for name in failed["headers"]}
    assert entries[0].get("error") is None


@pytest.mark.parametrize("mode", ["batch", "one"])
def test_a_failed_batch_is_saved_with_its_record_count_and_keys(
    recorder, httpserver, tmp_path, mode
):
    recorder.respond = answering({3: Response("nope", status=400)})
    folder = tmp_path / "out"
    config = saving(
        httpserver.url_for("/orders"),
        str(folder),
        fail_on_error=False,
        request_mode=mode,
        batch_size=2,
    )
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    entries = read_local(folder)
    summary = [(e["status"], e["records"], e["first_keys"], e["last_keys"]) for e in entries]
    if mode == "batch":
        assert summary == [
            (200, 2, ORDER_KEYS[1], ORDER_KEYS[2]),
            (400, 2, ORDER_KEYS[3], ORDER_KEYS[4]),
            (200, 1, ORDER_KEYS[5], ORDER_KEYS[5]),
        ]
    else:
        assert summary == [(400, 5, ORDER_KEYS[1], ORDER_KEYS[5])]
    assert [e["body"] for e in entries if e["status"] == 400] == ["nope"]


def test_error_entries_go_to_the_response_file_and_records_to_the_error_file(
    recorder, httpserver, tmp_path
):
    recorder.respond = answering({2: Response("boom", status=500)})
    folder = tmp_path / "out"
    config = saving(
        httpserver.url_for("/orders"),
        str(folder),
        fail_on_error=False,
        error_file_path=str(tmp_path / "errors.jsonl"),
    )
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    assert [e["status"] for e in read_local(folder)] == [200, 500, 200, 200, 200]
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [e["record"]["id"] for e in errors] == [2]


def test_a_retried_request_is_one_entry_with_its_last_answer(recorder, httpserver, tmp_path):
    tries = {}

    def respond(seen):
        [i] = ids_of(seen)
        tries[i] = tries.get(i, 0) + 1
        if i == 2 and tries[i] < 3:
            return Response("busy", status=503)
        if i == 4:
            return Response("still busy", status=503)
        return Response('{"ok": true}', content_type="application/json")

    recorder.respond = respond
    folder = tmp_path / "out"
    config = saving(
        httpserver.url_for("/orders"),
        str(folder),
        fail_on_error=False,
        max_retries=2,
        max_backoff_seconds=0,
    )
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    assert len(recorder.requests) == 9  # 1, 2 x3, 3, 4 x3, 5
    entries = read_local(folder)
    assert len(entries) == 5, "one entry per request, not per attempt"
    assert [(e["keys"]["id"], e["status"], e["body"]) for e in entries] == [
        (1, 200, {"ok": True}),
        (2, 200, {"ok": True}),
        (3, 200, {"ok": True}),
        (4, 503, "still busy"),
        (5, 200, {"ok": True}),
    ]
    if "attempts" in entries[0]:
        assert [e["attempts"] for e in entries] == [1, 3, 1, 3, 1]


def test_a_connection_failure_is_saved_with_null_status_and_the_error(tmp_path):
    folder = tmp_path / "out"
    url = closed_port_url()
    config = saving(url, str(folder), fail_on_error=False)
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 0, result.stderr
    entries = read_local(folder)
    assert len(entries) == 5
    for n, entry in enumerate(entries, 1):
        assert entry["request"] == n
        assert entry["status"] is None
        assert entry["url"] == url
        assert entry["error"], "the entry says why there was no answer"
        assert entry["body"] in (None, "")
        assert entry["keys"] == ORDER_KEYS[n]


# fail_on_error true: the failing request's entry is saved before the run ends


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_failing_request_is_saved_before_the_run_stops(recorder, httpserver, tmp_path, fmt):
    recorder.respond = answering({3: Response("boom", status=500)})
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), fmt, fail_on_error=True)
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 1
    assert len(recorder.requests) == 3
    [file] = local_files(folder)
    entries = parse_entries(file.read_bytes().decode(), fmt)  # json: still one valid array
    assert [(e["keys"], e["status"]) for e in entries] == [
        (ORDER_KEYS[1], 200),
        (ORDER_KEYS[2], 200),
        (ORDER_KEYS[3], 500),
    ]
    assert entries[2]["body"] == "boom"
    assert entries[2]["error"]


def test_a_failing_connection_is_saved_before_the_run_stops(tmp_path):
    folder = tmp_path / "out"
    config = saving(closed_port_url(), str(folder), fail_on_error=True)
    assert run_target(config, ORDERS, tmp_path).returncode == 1
    [entry] = read_local(folder)
    assert entry["status"] is None
    assert entry["error"]
    assert entry["keys"] == ORDER_KEYS[1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_failing_request_is_saved_in_memory_too(recorder, httpserver, monkeypatch, fmt):
    recorder.respond = answering({2: Response('{"why": "nope"}', status=409,
                                            content_type="application/json")})  # fmt: skip
    folder = memory_folder()
    config = saving(httpserver.url_for("/orders"), folder, fmt, fail_on_error=True)
    with pytest.raises(TargetError):
        run_in_process(monkeypatch, config, ORDERS)
    entries = read_memory(folder, fmt=fmt)
    assert [(e["keys"], e["status"]) for e in entries] == [
        (ORDER_KEYS[1], 200),
        (ORDER_KEYS[2], 409),
    ]
    assert entries[1]["body"] == {"why": "nope"}


def test_the_failing_request_is_saved_with_concurrent_requests(recorder, httpserver, tmp_path):
    data = ORDERS.read_bytes().splitlines()[0] + b"\n"
    data += b"".join(
        json.dumps({"type": "RECORD", "stream": "orders",
                    "record": {"region": "eu", "id": i, "total": 1}}).encode() + b"\n"
        for i in range(1, 41)
    )  # fmt: skip
    recorder.respond = answering({17: Response("boom", status=500)})
    folder = tmp_path / "out"
    config = saving(
        httpserver.url_for("/orders/#{id}"), str(folder), fail_on_error=True, max_concurrency=8
    )
    assert run_target(config, data, tmp_path).returncode == 1
    entries = read_local(folder)
    assert {"region": "eu", "id": 17} in [e["keys"] for e in entries if e["status"] == 500]
    assert sorted(e["request"] for e in entries) == list(range(1, len(entries) + 1))
    sent = sorted(i for seen in recorder.requests for i in ids_of(seen))
    assert sorted(e["keys"]["id"] for e in entries) == sent, "every request sent is saved"
