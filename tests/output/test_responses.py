"""Saving responses: one entry per request, per stream and run, in every folder, format, mode.

Local folders and `file://` URLs are tested with the target as a subprocess; `memory://`
lives in the target's own process, so those runs happen in-process.
"""

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from support.responses import (
    COOKIE,
    FORMATS,
    KEPT_HEADERS,
    MODES,
    ORDER_KEYS,
    ORDERS,
    ORDERS_STATE,
    answer_with_ids,
    assert_recent,
    check_file_name,
    ids_of,
    local_files,
    memory_files,
    memory_folder,
    parse_entries,
    read_local,
    read_memory,
    run_in_process,
)
from support.run import TARGET, clean_env, run_target
from werkzeug import Response

EXPECTED_IDS = {
    "single": [[1], [2], [3], [4], [5]],
    "batch": [[1, 2], [3, 4], [5]],  # batch_size 2
    "one": [[1, 2, 3, 4, 5]],
}
WHERE = ("path", "file_url", "memory")


def saving(url: str, folder: str, fmt: str | None = None, **settings) -> dict:
    config = {"url": url, "save_responses": True, "response_file_path": folder, **settings}
    if fmt is not None:
        config["response_file_format"] = fmt
    return config


def run_orders(where, config, data, tmp_path, monkeypatch, capsys):
    """Run with the folder kind `where`; return (entries, STATE values, raw file text)."""
    fmt = config.get("response_file_format", "jsonl")
    if where == "memory":
        folder = memory_folder()
        run_in_process(monkeypatch, {**config, "response_file_path": folder}, data)
        states = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        [text] = memory_files(folder).values()
        return read_memory(folder, fmt=fmt), states, text
    folder = tmp_path / "responses" / "deeper"  # created by the target
    path = folder.as_uri() if where == "file_url" else str(folder)
    result = run_target({**config, "response_file_path": path}, data, tmp_path)
    assert result.returncode == 0, result.stderr
    [file] = local_files(folder)
    return read_local(folder, fmt=fmt), result.states, file.read_bytes().decode()


def check_entry(entry, n, ids, mode, url, started):
    assert entry["stream"] == "orders"
    assert entry["request"] == n
    assert entry["method"] == "POST"
    assert entry["url"] == url
    assert entry["status"] == 201
    assert isinstance(entry["elapsed_ms"], int | float)
    assert entry["elapsed_ms"] >= 0
    assert entry.get("error") is None
    when = datetime.fromisoformat(entry["time"])
    assert when.utcoffset() == timedelta(0), "entry times are UTC"
    assert_recent(when, started)
    headers = {name.lower(): value for name, value in entry["headers"].items()}
    assert set(headers) == KEPT_HEADERS
    assert headers["content-type"] == "application/json"
    assert headers["location"] == f"/orders/{ids[0]}"
    assert headers["x-ratelimit-remaining"] == "42"
    assert headers["ratelimit-limit"] == "100"
    assert headers["retry-after"] == "0"
    assert entry["body"] == {"received": ids}
    if mode == "single":
        assert entry["keys"] == ORDER_KEYS[ids[0]]
    else:
        assert entry["records"] == len(ids)
        assert entry["first_keys"] == ORDER_KEYS[ids[0]]
        assert entry["last_keys"] == ORDER_KEYS[ids[-1]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", WHERE)
def test_one_entry_per_request_in_every_folder_format_and_mode(
    recorder, httpserver, tmp_path, monkeypatch, capsys, where, fmt, mode
):
    recorder.respond = answer_with_ids
    url = httpserver.url_for("/orders")
    config = saving(url, "set-below", fmt, request_mode=mode, batch_size=2)
    started = datetime.now(UTC)

    entries, states, text = run_orders(where, config, ORDERS, tmp_path, monkeypatch, capsys)

    assert states == [ORDERS_STATE]
    assert [ids_of(seen) for seen in recorder.requests] == EXPECTED_IDS[mode]
    assert len(entries) == len(recorder.requests), "one entry per request, not per record"
    for n, (entry, ids) in enumerate(zip(entries, EXPECTED_IDS[mode], strict=True), 1):
        check_entry(entry, n, ids, mode, url, started)
    assert COOKIE not in text, "Set-Cookie is never saved"
    assert "not-kept" not in text


@pytest.mark.parametrize("where", WHERE)
def test_jsonl_is_the_default_format(recorder, httpserver, tmp_path, monkeypatch, capsys, where):
    recorder.respond = answer_with_ids
    config = saving(httpserver.url_for("/orders"), "set-below")
    entries, _, text = run_orders(where, config, ORDERS, tmp_path, monkeypatch, capsys)
    assert len(entries) == 5
    assert [json.loads(line)["request"] for line in text.splitlines()] == [1, 2, 3, 4, 5]


def test_file_name_is_stream_and_utc_timestamp(recorder, httpserver, tmp_path):
    folder = tmp_path / "out"
    started = datetime.now(UTC)
    for fmt in FORMATS:
        config = saving(httpserver.url_for("/orders"), str(folder / fmt), fmt)
        assert run_target(config, ORDERS, tmp_path).returncode == 0
        [file] = local_files(folder / fmt)
        assert_recent(check_file_name(file.name, "orders", fmt), started)


def test_each_run_writes_a_new_file(recorder, httpserver, tmp_path):
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder))
    for _ in range(3):
        assert run_target(config, ORDERS, tmp_path).returncode == 0
    files = local_files(folder)
    assert len(files) == 3, "one file per stream and run; no run overwrites another's"
    for file in files:
        assert [e["request"] for e in parse_entries(file.read_bytes().decode(), "jsonl")] == [
            1,
            2,
            3,
            4,
            5,
        ]


def test_csv_file_parses_with_the_csv_module_even_with_awkward_bodies(
    recorder, httpserver, tmp_path
):
    awkward = 'line one, with "quotes"\r\nline two;\ttab\nthird — ünïcode'
    recorder.respond = lambda seen: Response(awkward, content_type="text/plain")
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), "csv")
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    entries = read_local(folder, fmt="csv")
    assert [e["request"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["body"] for e in entries] == [awkward] * 5
    assert [e["keys"] for e in entries] == list(ORDER_KEYS.values())


@pytest.mark.parametrize("mode", MODES)
def test_json_file_is_one_valid_array_after_the_run(recorder, httpserver, tmp_path, mode):
    recorder.respond = answer_with_ids
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), "json", request_mode=mode)
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    [file] = local_files(folder)
    entries = json.loads(file.read_bytes().decode())
    assert isinstance(entries, list)
    assert [e["request"] for e in entries] == list(range(1, len(recorder.requests) + 1))


def test_a_stream_with_no_records_leaves_a_valid_empty_file_or_none(recorder, httpserver, tmp_path):
    schema_only = ORDERS.read_bytes().splitlines()[0] + b"\n"
    for fmt in FORMATS:
        folder = tmp_path / fmt
        config = saving(httpserver.url_for("/orders"), str(folder), fmt)
        assert run_target(config, schema_only, tmp_path).returncode == 0
        for file in local_files(folder):
            assert parse_entries(file.read_bytes().decode(), fmt) == []
    assert recorder.requests == []


# Stream names and streams


SPECIAL = "public:orders/2024?x"


def special_stream_input(name: str) -> bytes:
    schema = {
        "type": "SCHEMA",
        "stream": name,
        "schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "key_properties": ["id"],
    }
    lines = [schema] + [{"type": "RECORD", "stream": name, "record": {"id": i}} for i in (1, 2)]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize("where", ["path", "memory"])
def test_stream_name_with_special_characters_is_made_safe_for_the_file_name(
    recorder, httpserver, tmp_path, monkeypatch, where
):
    config = saving(httpserver.url_for("/orders"), "set-below")
    data = special_stream_input(SPECIAL)
    if where == "memory":
        folder = memory_folder()
        run_in_process(monkeypatch, {**config, "response_file_path": folder}, data)
        files = memory_files(folder)
        [(name, text)] = files.items()
    else:
        folder = tmp_path / "out"
        result = run_target({**config, "response_file_path": str(folder)}, data, tmp_path)
        assert result.returncode == 0, result.stderr
        [file] = local_files(folder)
        assert file.parent == folder, "the '/' in the stream name made no subfolder"
        name, text = file.name, file.read_bytes().decode()
    check_file_name(name, "public_orders_2024_x", "jsonl")
    entries = parse_entries(text, "jsonl")
    assert [e["stream"] for e in entries] == [SPECIAL, SPECIAL], "entries keep the real name"
    assert [e["keys"] for e in entries] == [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize(
    "stream",
    ["../../escape", 'a\\b*c"d<e>f|g', "..", "schema.table"],
    ids=["dot-dot-slash", "windows-reserved", "only-dots", "dot-kept"],
)
def test_any_stream_name_gives_a_file_inside_the_folder(recorder, httpserver, tmp_path, stream):
    folder = tmp_path / "a" / "b" / "out"
    config = saving(httpserver.url_for("/orders"), str(folder))
    result = run_target(config, special_stream_input(stream), tmp_path)
    assert result.returncode == 0, result.stderr
    everywhere = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "config.json"]
    assert len(everywhere) == 1, everywhere
    [file] = everywhere
    assert file.parent == folder
    assert not set(file.name) & set('/\\:*?"<>|')
    assert not file.name.startswith(".")
    assert [e["stream"] for e in parse_entries(file.read_bytes().decode(), "jsonl")] == [
        stream,
        stream,
    ]


def test_each_stream_has_its_own_file_and_numbering(recorder, httpserver, tmp_path):
    lines = ORDERS.read_bytes().splitlines()
    refunds = [line.replace(b'"orders"', b'"refunds"') for line in lines[:3]]
    data = b"\n".join([lines[0], refunds[0], lines[1], refunds[1], lines[2], refunds[2]]) + b"\n"
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder))
    assert run_target(config, data, tmp_path).returncode == 0
    assert len(local_files(folder)) == 2
    orders = read_local(folder, "orders")
    refunds_entries = read_local(folder, "refunds")
    assert [(e["stream"], e["request"], e["keys"]["id"]) for e in orders] == [
        ("orders", 1, 1),
        ("orders", 2, 2),
    ]
    assert [(e["stream"], e["request"], e["keys"]["id"]) for e in refunds_entries] == [
        ("refunds", 1, 1),
        ("refunds", 2, 2),
    ]


def test_a_repeated_identical_schema_keeps_one_file(recorder, httpserver, tmp_path):
    lines = ORDERS.read_bytes().splitlines()
    data = b"\n".join([*lines[:3], lines[0], *lines[3:]]) + b"\n"
    folder = tmp_path / "out"
    assert run_target(saving(httpserver.url_for("/o"), str(folder)), data, tmp_path).returncode == 0
    assert [e["request"] for e in read_local(folder)] == [1, 2, 3, 4, 5]


def test_a_schema_change_mid_stream_keeps_one_file_per_stream_and_run(
    recorder, httpserver, tmp_path
):
    lines = ORDERS.read_bytes().splitlines()
    changed = json.loads(lines[0])
    changed["schema"]["properties"]["note"] = {"type": "string"}
    data = b"\n".join([*lines[:3], json.dumps(changed).encode(), *lines[3:]]) + b"\n"
    folder = tmp_path / "out"
    assert run_target(saving(httpserver.url_for("/o"), str(folder)), data, tmp_path).returncode == 0
    assert len(recorder.requests) == 5
    files = local_files(folder)
    assert len(files) == 1, (
        f"one file per stream and run, but a SCHEMA change started another: "
        f"{[f.name for f in files]}"
    )
    assert [e["request"] for e in read_local(folder)] == [1, 2, 3, 4, 5]


def test_records_through_stream_maps_keep_their_keys(recorder, httpserver, tmp_path):
    folder = tmp_path / "out"
    config = saving(
        httpserver.url_for("/orders"),
        str(folder),
        request_mode="batch",
        batch_size=2,
        stream_maps={"orders": {"total": "__NULL__"}},
    )
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "total" not in recorder.requests[0].json()[0], "the stream map was applied"
    entries = read_local(folder)
    assert [(e["records"], e["first_keys"], e["last_keys"]) for e in entries] == [
        (2, ORDER_KEYS[1], ORDER_KEYS[2]),
        (2, ORDER_KEYS[3], ORDER_KEYS[4]),
        (1, ORDER_KEYS[5], ORDER_KEYS[5]),
    ]


def test_stream_without_key_properties_saves_entries_without_keys(recorder, httpserver, tmp_path):
    data = ORDERS.read_bytes().replace(
        b'"key_properties": ["region", "id"]', b'"key_properties": []'
    )
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), request_mode="batch", batch_size=2)
    assert run_target(config, data, tmp_path).returncode == 0
    entries = read_local(folder)
    assert [e["records"] for e in entries] == [2, 2, 1]
    assert all(e.get("first_keys") in (None, {}) for e in entries)


def test_get_requests_are_saved_too(recorder, httpserver, tmp_path):
    recorder.respond = lambda seen: Response('{"found": true}', content_type="application/json")
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders/#{id}"), str(folder), method="GET")
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    entries = read_local(folder)
    assert [(e["method"], e["url"], e["body"]) for e in entries] == [
        ("GET", httpserver.url_for(f"/orders/{i}"), {"found": True}) for i in range(1, 6)
    ]


# Bodies


def run_with_answer(recorder, httpserver, tmp_path, answer: Response) -> dict:
    recorder.respond = lambda seen: answer
    folder = tmp_path / "out"
    data = b"\n".join(ORDERS.read_bytes().splitlines()[:2]) + b"\n"
    result = run_target(saving(httpserver.url_for("/orders"), str(folder)), data, tmp_path)
    assert result.returncode == 0, result.stderr
    [entry] = read_local(folder)
    return entry


@pytest.mark.parametrize(
    ("content_type", "body", "saved"),
    [
        ("application/json", '{"a": [1, 2.5, null]}', {"a": [1, 2.5, None]}),
        ("application/problem+json", '{"title": "x"}', {"title": "x"}),
        ("application/json; charset=utf-8", "[1, 2]", [1, 2]),
        ("text/plain", '{"a": 1}', '{"a": 1}'),
        ("text/html", "<p>hello</p>", "<p>hello</p>"),
        ("application/json", "not json {", "not json {"),
    ],
    ids=["json", "problem-json", "json-charset", "json-text-as-text", "html", "broken-json"],
)
def test_body_is_parsed_json_when_the_answer_is_json_and_text_otherwise(
    recorder, httpserver, tmp_path, content_type, body, saved
):
    entry = run_with_answer(
        recorder, httpserver, tmp_path, Response(body, content_type=content_type)
    )
    assert entry["body"] == saved


def test_an_empty_answer_is_saved(recorder, httpserver, tmp_path):
    entry = run_with_answer(recorder, httpserver, tmp_path, Response(status=204))
    assert entry["status"] == 204
    assert entry["body"] in ("", None)


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_body_is_cut_at_64_kib(recorder, httpserver, tmp_path, content_type):
    if content_type == "application/json":
        big = json.dumps({"items": ["x" * 1000 for _ in range(200)]})
    else:
        big = "".join(f"{i:08d}\n" for i in range(30_000))
    assert len(big) > 150 * 1024
    entry = run_with_answer(
        recorder, httpserver, tmp_path, Response(big, content_type=content_type)
    )
    assert isinstance(entry["body"], str)
    assert len(entry["body"].encode()) <= 64 * 1024 + 8  # room for a "cut here" mark
    assert entry["body"].startswith(big[:60_000])


# Settings (public interface)


def test_responses_are_not_saved_by_default(recorder, httpserver, tmp_path):
    folder = tmp_path / "out"
    config = {"url": httpserver.url_for("/orders"), "response_file_path": str(folder)}
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 5
    assert not folder.exists()


def test_save_responses_false_writes_nothing(recorder, httpserver, tmp_path):
    folder = tmp_path / "out"
    config = saving(httpserver.url_for("/orders"), str(folder), save_responses=False)
    assert run_target(config, ORDERS, tmp_path).returncode == 0
    assert not folder.exists()


BAD_INPUT_AFTER_SETTINGS = b"this is not json\n" + ORDERS.read_bytes()


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"save_responses": True}, ["response_file_path"]),
        ({"save_responses": True, "response_file_path": ""}, ["response_file_path"]),
        ({"save_responses": True, "response_file_path": "/tmp", "response_file_format": "xml"},
         ["response_file_format"]),
        ({"streams": {"orders": {"save_responses": True}}}, ["orders", "response_file_path"]),
    ],
    ids=["no-path", "empty-path", "bad-format", "stream-no-path"],
)  # fmt: skip
def test_bad_response_settings_are_refused_before_reading_input(
    recorder, httpserver, tmp_path, settings, names
):
    config = {"url": httpserver.url_for("/orders"), **settings}
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert recorder.requests == []
    for name in names:
        assert name in result.stderr, result.stderr
    assert "line 1" not in result.stderr


def test_an_unknown_or_uninstalled_protocol_is_refused_before_reading_input(
    recorder, httpserver, tmp_path
):
    config = saving(httpserver.url_for("/orders"), "nosuchprotocol://bucket/responses")
    result = run_target(config, BAD_INPUT_AFTER_SETTINGS, tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert recorder.requests == []
    assert "response_file_path" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, "a settings mistake is one clear line"
    assert "line 1" not in result.stderr


def test_a_folder_that_cannot_be_created_is_a_clear_error(recorder, httpserver, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = saving(httpserver.url_for("/orders"), str(blocker / "responses"))
    result = run_target(config, ORDERS, tmp_path)
    assert result.returncode == 1
    assert recorder.requests == [], "no request is sent when its answer can't be saved"
    assert "response_file_path" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, "a settings mistake is one clear line"


def test_settings_are_described_by_about(tmp_path):
    about = subprocess.run(
        [*TARGET, "--about", "--format", "json"],
        capture_output=True,
        env=clean_env(),
        check=True,
        timeout=60,
    )
    props = json.loads(about.stdout)["settings"]["properties"]
    assert props["save_responses"]["type"] in ("boolean", ["boolean", "null"])
    assert props["save_responses"].get("default") is False
    assert "string" in str(props["response_file_path"]["type"])
    assert set(props["response_file_format"]["enum"]) == set(FORMATS)
    assert props["response_file_format"].get("default") == "jsonl"


def test_per_stream_settings_choose_which_streams_save_and_how(recorder, httpserver, tmp_path):
    lines = ORDERS.read_bytes().splitlines()
    refunds = [line.replace(b'"orders"', b'"refunds"') for line in lines[:3]]
    data = b"\n".join([*lines[:3], *refunds]) + b"\n"
    config = {
        "url": httpserver.url_for("/x"),
        "response_file_path": str(tmp_path / "top"),
        "streams": {
            "refunds": {"save_responses": True, "response_file_format": "csv"},
        },
    }
    result = run_target(config, data, tmp_path)
    assert result.returncode == 0, result.stderr
    [file] = local_files(tmp_path / "top")
    check_file_name(file.name, "refunds", "csv")
    assert [e["keys"] for e in parse_entries(file.read_bytes().decode(), "csv")] == [
        ORDER_KEYS[1],
        ORDER_KEYS[2],
    ]
