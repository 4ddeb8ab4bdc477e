"""Response entries are in the file before the STATE that covers their requests is emitted.

The target runs as a process fed line by line; the moment a STATE line shows on its
stdout, the response file is read: every request before that STATE must be in it.
"""

import json
import threading

import pytest
from support.responses import FORMATS, local_files, parse_entries
from support.singer_lines import ID_SCHEMA as SCHEMA
from support.singer_lines import id_record as record
from support.singer_lines import id_state as state
from werkzeug import Response


def saved_ids(folder, fmt) -> list[int]:
    """Ids covered by the entries in the (maybe still open) file, in file order."""
    files = local_files(folder)
    if not files:
        return []
    [file] = files
    ids = []
    for entry in parse_entries(file.read_bytes().decode(), fmt, partial=True):
        if "keys" in entry and entry["keys"] is not None:
            ids.append(entry["keys"]["id"])
        else:
            ids.extend(range(entry["first_keys"]["id"], entry["last_keys"]["id"] + 1))
    return ids


def config_for(httpserver, folder, fmt, **settings):
    return {
        "url": httpserver.url_for("/users"),
        "save_responses": True,
        "response_file_path": str(folder),
        "response_file_format": fmt,
        **settings,
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_entries_are_in_the_file_when_their_state_is_emitted(
    recorder, httpserver, live_target, tmp_path, fmt, mode
):
    folder = tmp_path / "out"
    target = live_target(
        config_for(
            httpserver, folder, fmt, request_mode=mode, batch_size=50, batch_max_age_seconds=0.2
        )
    )

    target.send(SCHEMA, record(1), record(2), state(2))
    assert json.loads(target.next_line())["bookmarks"]["users"]["id"] == 2
    assert sorted(saved_ids(folder, fmt)) == [1, 2]

    target.send(record(3), state(3))
    assert json.loads(target.next_line())["bookmarks"]["users"]["id"] == 3
    assert sorted(saved_ids(folder, fmt)) == [1, 2, 3]

    target.send(record(4), record(5), record(6), state(6))
    assert json.loads(target.next_line())["bookmarks"]["users"]["id"] == 6
    assert sorted(saved_ids(folder, fmt)) == [1, 2, 3, 4, 5, 6]

    assert target.finish() == 0, target.stderr
    [file] = local_files(folder)
    entries = parse_entries(file.read_bytes().decode(), fmt)  # complete now (json: closed)
    assert [e["request"] for e in entries] == list(range(1, len(entries) + 1))


def test_state_in_one_mode_comes_after_the_entry(recorder, httpserver, live_target, tmp_path):
    folder = tmp_path / "out"
    target = live_target(config_for(httpserver, folder, "jsonl", request_mode="one"))
    target.send(SCHEMA, record(1), record(2), state(2), record(3))
    assert target.proc.stdin is not None
    target.proc.stdin.close()  # `one` sends at the end of the input
    assert json.loads(target.next_line())["bookmarks"]["users"]["id"] == 2
    assert saved_ids(folder, "jsonl") == [1, 2, 3]
    assert target.wait() == 0, target.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_entries_of_concurrent_requests_are_in_the_file_when_state_is_emitted(
    threaded, live_target, tmp_path, fmt
):
    server, recorder = threaded
    all_arrived = threading.Event()

    def respond(seen):
        if len(recorder.requests) >= 30:
            all_arrived.set()
        if seen.json()["id"] == 1:
            all_arrived.wait(timeout=30)  # the first request answers last
        return Response("ok")

    recorder.respond = respond
    folder = tmp_path / "out"
    config = config_for(server, folder, fmt, max_concurrency=8)
    target = live_target({**config, "url": server.url_for("/users") + "/#{id}"})
    target.send(SCHEMA, *[record(i) for i in range(1, 31)], state(30))
    assert json.loads(target.next_line())["bookmarks"]["users"]["id"] == 30
    assert all_arrived.is_set()
    assert sorted(saved_ids(folder, fmt)) == list(range(1, 31))
    assert target.finish() == 0, target.stderr
