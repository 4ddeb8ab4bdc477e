"""Concurrent requests (max_concurrency): one whole entry per request, numbered 1..N."""

import json

import pytest
from support.responses import (
    FORMATS,
    local_files,
    memory_files,
    memory_folder,
    parse_entries,
    run_in_process,
)
from support.run import run_target
from werkzeug import Response

COUNT = 200


def items(count: int = COUNT) -> bytes:
    schema = {
        "type": "SCHEMA",
        "stream": "items",
        "schema": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "group": {"type": "integer"},
                           "pad": {"type": "string"}},
        },
        "key_properties": ["id"],
    }  # fmt: skip
    lines = [schema] + [
        {"type": "RECORD", "stream": "items", "record": {"id": i, "group": i % 10, "pad": "x" * i}}
        for i in range(1, count + 1)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def echo(seen):
    """Answer with what was received, sized by the record so entries differ in length."""
    body = seen.json()
    ids = [r["id"] for r in body] if isinstance(body, list) else [body["id"]]
    return Response(
        json.dumps({"ids": ids, "path": seen.path, "echo": "y" * (ids[0] * 7)}),
        content_type="application/json",
    )


def check_single_entries(entries: list[dict], base: str) -> None:
    assert len(entries) == COUNT
    assert sorted(e["request"] for e in entries) == list(range(1, COUNT + 1)), "1..N, unique"
    assert sorted(e["keys"]["id"] for e in entries) == list(range(1, COUNT + 1))
    for entry in entries:
        i = entry["keys"]["id"]
        # Every part of an entry belongs to the same request.
        assert entry["url"] == f"{base}/{i}"
        assert entry["body"] == {"ids": [i], "path": f"/items/{i}", "echo": "y" * (i * 7)}
        assert entry["status"] == 200
        assert entry["stream"] == "items"


@pytest.mark.parametrize("fmt", FORMATS)
def test_concurrent_single_requests_each_have_one_whole_entry(threaded, tmp_path, fmt):
    server, recorder = threaded
    recorder.respond = echo
    base = server.url_for("/items")
    folder = tmp_path / "out"
    config = {
        "url": base + "/#{id}",
        "max_concurrency": 8,
        "save_responses": True,
        "response_file_path": str(folder),
        "response_file_format": fmt,
    }
    result = run_target(config, items(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == COUNT
    [file] = local_files(folder)
    text = file.read_bytes().decode()
    if fmt == "jsonl":
        lines = text.split("\n")
        assert lines[-1] == "", "the file ends with a complete line"
        entries = [json.loads(line) for line in lines[:-1]]  # every line parses on its own
    else:
        entries = parse_entries(text, fmt)
    check_single_entries(entries, base)


def test_concurrent_requests_into_memory(threaded, monkeypatch):
    server, recorder = threaded
    recorder.respond = echo
    base = server.url_for("/items")
    folder = memory_folder()
    config = {
        "url": base + "/#{id}",
        "max_concurrency": 8,
        "save_responses": True,
        "response_file_path": folder,
    }
    run_in_process(monkeypatch, config, items())
    [text] = memory_files(folder).values()
    check_single_entries([json.loads(line) for line in text.splitlines()], base)


def test_concurrent_batches_each_have_one_whole_entry(threaded, tmp_path):
    server, recorder = threaded
    recorder.respond = echo
    folder = tmp_path / "out"
    config = {
        "url": server.url_for("/items") + "/#{group}",
        "request_mode": "batch",
        "batch_size": 4,
        "max_concurrency": 8,
        "save_responses": True,
        "response_file_path": str(folder),
    }
    assert run_target(config, items(), tmp_path).returncode == 0
    [file] = local_files(folder)
    entries = parse_entries(file.read_bytes().decode(), "jsonl")
    assert len(entries) == len(recorder.requests) == COUNT // 4
    assert sorted(e["request"] for e in entries) == list(range(1, len(entries) + 1))
    assert sum(e["records"] for e in entries) == COUNT
    for entry in entries:
        ids = entry["body"]["ids"]
        group = ids[0] % 10
        assert all(i % 10 == group for i in ids)
        assert entry["url"].endswith(f"/items/{group}")
        assert entry["records"] == len(ids)
        assert (entry["first_keys"], entry["last_keys"]) == ({"id": ids[0]}, {"id": ids[-1]})
