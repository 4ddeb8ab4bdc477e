"""body_format ndjson against real loopback servers: one JSON document per line.

Expectations come from the issue and the formats' own rules, not from the target's code:
NDJSON is `application/x-ndjson`, every document ends with LF and holds no CR or LF; a
record sent as it is arrives as the tap wrote it; an Elasticsearch bulk body is an action
line, then the document, and must end with a newline.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from decimal import Decimal

import pytest
from support.inprocess import run_inprocess
from support.run import Seen
from werkzeug import Response

SCHEMA = {
    "type": "SCHEMA",
    "stream": "docs",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "price": {"type": "number"},
            "at": {"type": "string", "format": "date-time"},
            "note": {"type": ["string", "null"]},
        },
    },
}
# As a tap might write them: spacing, key order and number spellings differ per record.
RECORDS = [
    '{"id": 1, "price": 1.0, "at": "2024-01-01T00:00:00Z", "note": "plain"}',
    '{"at":"2024-01-02T00:00:00.000+00:00","price":120.000,"id":2,"note":null}',
    '{"note": "two\\nlines, \\"quoted\\"", "id": 3, "price": 1e3, "at": "2024-01-03T00:00:00Z"}',
    '{"id": 4, "price": -0.50, "at": "2024-01-04T00:00:00Z", "note": "\u00e9\u2028x"}',
    '{"id": 5, "price": 12345678901234567890.123456789, "at": "2024-01-05T00:00:00Z"}',
]
LINES_PER_REQUEST = {"single": [1, 1, 1, 1, 1], "batch": [2, 2, 1], "one": [5]}
BULK = '{"index": {"_id": "#{id}"}}\n"#{*}"'


def singer(*records: str) -> str:
    """A Singer input: the SCHEMA, each record text as written, then a STATE."""
    lines = [json.dumps(SCHEMA)]
    lines += [f'{{"type": "RECORD", "stream": "docs", "record": {text}}}' for text in records]
    lines.append('{"type": "STATE", "value": {"n": 1}}')
    return "\n".join(lines) + "\n"


def ndjson_lines(body: bytes) -> list[bytes]:
    """The documents of an NDJSON body, checking that each one ends with LF."""
    assert body.endswith(b"\n"), body
    assert b"\r" not in body, body
    return body.split(b"\n")[:-1]


def bulk_pairs(body: bytes) -> list[tuple[dict, bytes]]:
    """(action, document text) of an Elasticsearch bulk body, read as Elasticsearch does."""
    lines = ndjson_lines(body)
    assert len(lines) % 2 == 0, lines
    pairs = []
    for action, document in zip(lines[::2], lines[1::2], strict=True):
        meta = json.loads(action)
        assert list(meta) == ["index"] and isinstance(meta["index"], dict), action
        assert isinstance(json.loads(document), dict), document
        pairs.append((meta, document))
    return pairs


def elasticsearch(seen: Seen) -> Response:
    """A bulk endpoint's answer: 400 for a body it cannot read, else an item per action."""
    try:
        pairs = bulk_pairs(seen.body)
    except (AssertionError, ValueError) as exc:
        return Response(json.dumps({"error": str(exc), "status": 400}), status=400)
    items = [{"index": {"_id": meta["index"]["_id"], "status": 201}} for meta, _ in pairs]
    body = json.dumps({"errors": False, "items": items})
    return Response(body, status=200, content_type="application/json")


def config(httpserver, mode: str = "batch", **settings) -> dict:
    return {
        "url": httpserver.url_for("/docs"),
        "body_format": "ndjson",
        "request_mode": mode,
        "batch_size": 2,
        **settings,
    }


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_each_record_is_one_line_of_the_bytes_the_tap_wrote(recorder, httpserver, tmp_path, mode):
    run = run_inprocess(config(httpserver, mode), singer(*RECORDS), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert {seen.header("Content-Type") for seen in recorder.requests} == {"application/x-ndjson"}
    lines = [ndjson_lines(seen.body) for seen in recorder.requests]
    assert [len(request) for request in lines] == LINES_PER_REQUEST[mode]
    assert [line for request in lines for line in request] == [r.encode() for r in RECORDS]
    assert run.states == [{"n": 1}]


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_a_carriage_return_between_tokens_does_not_break_a_line(
    recorder, httpserver, tmp_path, mode
):
    """JSON allows CR as whitespace; NDJSON forbids it in a line: it becomes a space."""
    data = singer(RECORDS[0], '{"id": 9,\r"price": 2.5,\r"at": "2024-01-09T00:00:00Z"}')
    run = run_inprocess(config(httpserver, mode), data, tmp_path)
    assert run.exit_code == 0, run.stderr
    lines = [line for seen in recorder.requests for line in ndjson_lines(seen.body)]
    assert lines == [RECORDS[0].encode(), b'{"id": 9, "price": 2.5, "at": "2024-01-09T00:00:00Z"}']


@pytest.mark.parametrize("mode", ["single", "batch", "one"])
def test_a_bulk_template_sends_an_action_line_then_the_record(recorder, httpserver, tmp_path, mode):
    recorder.respond = elasticsearch
    run = run_inprocess(config(httpserver, mode, custom_payload=BULK), singer(*RECORDS), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert all(seen.header("Content-Type") == "application/x-ndjson" for seen in recorder.requests)
    pairs = [pair for seen in recorder.requests for pair in bulk_pairs(seen.body)]
    assert [len(bulk_pairs(seen.body)) for seen in recorder.requests] == LINES_PER_REQUEST[mode]
    assert [meta for meta, _ in pairs] == [{"index": {"_id": i}} for i in range(1, 6)]
    assert [document for _, document in pairs] == [r.encode() for r in RECORDS]
    assert run.states == [{"n": 1}]


@pytest.mark.parametrize("template", [None, BULK])
def test_records_changed_by_stream_maps_are_encoded_into_their_lines(
    recorder, httpserver, tmp_path, template
):
    settings = {"stream_maps": {"docs": {"label": "'x' + str(id)"}}}
    if template is not None:
        settings["custom_payload"] = template
    run = run_inprocess(config(httpserver, **settings), singer(*RECORDS), tmp_path)
    assert run.exit_code == 0, run.stderr
    lines = [line for seen in recorder.requests for line in ndjson_lines(seen.body)]
    if template is not None:
        assert [json.loads(action) for action in lines[::2]] == [
            {"index": {"_id": i}} for i in range(1, 6)
        ]
        lines = lines[1::2]
    records = [json.loads(text, parse_float=Decimal) for text in RECORDS]
    expected = [{**record, "label": f"x{record['id']}"} for record in records]
    assert [json.loads(line, parse_float=Decimal) for line in lines] == expected


def test_the_whole_record_placeholder_fills_json_bodies_too(recorder, httpserver, tmp_path):
    settings = {"body_format": "json", "custom_payload": '{"data": "#{*}", "source": "x"}'}
    run = run_inprocess(config(httpserver, **settings), singer(*RECORDS[:2]), tmp_path)
    assert run.exit_code == 0, run.stderr
    assert {seen.header("Content-Type") for seen in recorder.requests} == {"application/json"}
    assert [seen.body for seen in recorder.requests] == [
        f'[{{"data":{RECORDS[0]},"source":"x"}},{{"data":{RECORDS[1]},"source":"x"}}]'.encode()
    ]


def test_the_bulk_receiver_refuses_a_body_without_its_final_newline():
    """The receiver is as strict as Elasticsearch, so the bulk test shows the target's is kept."""
    body = b'{"index": {"_id": 1}}\n{"id": 1}'
    seen = Seen("POST", "/docs", "/docs", {}, body, 0.0)
    assert elasticsearch(seen).status_code == 400
    assert elasticsearch(replace(seen, body=body + b"\n")).status_code == 200


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {
                "static_fields": {"source": "tap-x", "v": 2},
                "field_mappings": [
                    {"field_name": "ident", "column_name": "id"},
                    {"field_name": "when", "column_name": "at"},
                    {"field_name": "price", "column_name": "price"},
                ],
            },
            [
                '{"source":"tap-x","v":2,"ident":1,"when":"2024-01-01T00:00:00Z","price":1.0}',
                '{"source":"tap-x","v":2,"ident":2,"when":"2024-01-02T00:00:00.000+00:00",'
                '"price":120.000}',
            ],
        ),
        (
            {"static_fields": {"source": "tap-x"}, "custom_payload": '{"doc": "#{*}"}'},
            [
                f'{{"source":"tap-x","doc":{RECORDS[0]}}}',
                f'{{"source":"tap-x","doc":{RECORDS[1]}}}',
            ],
        ),
        (
            {"static_fields": {"source": "tap-x", "id": 0}},
            [
                '{"source":"tap-x","id":1,"price":1.0,"at":"2024-01-01T00:00:00Z","note":"plain"}',
                '{"source":"tap-x","id":2,"at":"2024-01-02T00:00:00.000+00:00","price":120.000,'
                '"note":null}',
            ],
        ),
    ],
    ids=["mappings", "template", "record-wins"],
)
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_static_fields_and_mappings_apply_to_each_line(
    recorder, httpserver, tmp_path, settings, expected, mode
):
    run = run_inprocess(config(httpserver, mode, **settings), singer(*RECORDS[:2]), tmp_path)
    assert run.exit_code == 0, run.stderr
    lines = [line for seen in recorder.requests for line in ndjson_lines(seen.body)]
    assert lines == [text.encode() for text in expected]
    assert len(recorder.requests) == (2 if mode == "single" else 1)


def test_gzip_and_batch_max_bytes_count_the_lines(recorder, httpserver, tmp_path):
    records = [f'{{"id": {i}, "price": 1.0, "at": "2024-01-01T00:00:00Z"}}' for i in range(5)]
    line = len(records[0]) + 1  # each document and its LF
    settings = {"compression": "gzip", "batch_size": 100, "batch_max_bytes": 2 * line + 3}
    run = run_inprocess(config(httpserver, **settings), singer(*records), tmp_path)
    assert run.exit_code == 0, run.stderr
    bodies = [gzip.decompress(seen.body) for seen in recorder.requests]
    assert all(seen.header("Content-Encoding") == "gzip" for seen in recorder.requests)
    assert [len(body) for body in bodies] == [2 * line, 2 * line, line]
    assert [x for body in bodies for x in ndjson_lines(body)] == [r.encode() for r in records]


def test_failed_lines_go_to_the_error_file_and_answers_to_response_files(
    recorder, httpserver, tmp_path
):
    def refuse_record_3(seen) -> Response:
        if any(meta["index"]["_id"] == 3 for meta, _ in bulk_pairs(seen.body)):
            return Response('{"errors": true}', status=400, content_type="application/json")
        return elasticsearch(seen)

    recorder.respond = refuse_record_3
    errors, responses = tmp_path / "errors.jsonl", tmp_path / "responses"
    settings = {
        "custom_payload": BULK,
        "max_retries": 0,
        "fail_on_error": False,
        "error_file_path": str(errors),
        "save_responses": True,
        "response_file_path": str(responses),
    }
    run = run_inprocess(config(httpserver, **settings), singer(*RECORDS), tmp_path / "run")
    assert run.exit_code == 0, run.stderr
    failed = [json.loads(line) for line in errors.read_bytes().split(b"\n")[:-1]]
    assert [entry["record"]["id"] for entry in failed] == [3, 4]  # the second request
    [answers] = list(responses.iterdir())
    entries = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [entry["status"] for entry in entries] == [200, 400, 200]
    assert [item["index"]["_id"] for item in entries[0]["body"]["items"]] == [1, 2]
    assert run.states == [{"n": 1}]


REFUSED = {
    "nested attribute": (
        {"send_as_nested_attribute": True},
        ["'send_as_nested_attribute'", "body_format ndjson", "each record as a line"],
    ),
    "whole record in url": (
        {"url": "http://127.0.0.1:9/docs/#{*}"},
        ["setting 'url' uses #{*}", "the whole record"],
    ),
    "whole record in a header": (
        {"headers": {"X-Doc": "#{*}"}},
        ["setting 'headers.X-Doc' uses #{*}"],
    ),
    "whole record in csv": (
        {"body_format": "csv", "custom_payload": "#{id},#{*}"},
        ["setting 'custom_payload' uses #{*}", "body_format csv"],
    ),
    "whole record in a form": (
        {"body_format": "urlencoded", "custom_payload": "doc=#{*}"},
        ["setting 'custom_payload' uses #{*}", "body_format urlencoded"],
    ),
    "whole record inside text": (
        {"custom_payload": '{"index": {}}\n{"note": "about #{*}"}'},
        ['#{*} in the string "about #{*}" at $.note', "in line 2"],
    ),
    "whole record as a key": (
        {"body_format": "json", "custom_payload": '{"#{*}": 1}'},
        ['#{*} in the key "#{*}" of the object at $'],
    ),
    "a line that is not json": (
        {"custom_payload": '{"index": {}}\n{"doc": }'},
        ["not valid JSON", "at line 2 column 9", "one JSON document per line"],
    ),
    "a document over two lines": (
        {"custom_payload": '{"doc":\n "#{*}"}'},
        ["not valid JSON", "at line 1", "one JSON document per line"],
    ),
    "static fields beside two lines": (
        {"custom_payload": BULK, "static_fields": {"source": "x"}},
        ["'static_fields'", "2 lines"],
    ),
    "static fields with a template that is no object": (
        {"custom_payload": '"#{*}"', "static_fields": {"source": "x"}},
        ["'static_fields'", "not a JSON object; make it one"],
    ),
    "a csv content type": (
        {"headers": {"Content-Type": "text/csv"}},
        ["header 'Content-Type' is 'text/csv'", "body_format ndjson", "body_format csv"],
    ),
}


@pytest.mark.parametrize(("settings", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_apply_is_refused_at_start_up_in_one_line(
    httpserver, tmp_path, settings, words
):
    """Refused before any input is read: the input here is empty."""
    run = run_inprocess(config(httpserver, **settings), "", tmp_path)
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if "ERROR" in line]
    for word in words:
        assert word in line, line
    if "send_as_nested_attribute" not in settings:  # nesting is no way out for ndjson
        assert "send_as_nested_attribute" not in line, line


def test_a_stream_override_to_ndjson_is_checked_like_the_top_level(recorder, httpserver, tmp_path):
    streams = {"docs": {"body_format": "ndjson", "send_as_nested_attribute": True}}
    settings = {"url": httpserver.url_for("/docs"), "streams": streams}
    run = run_inprocess(settings, singer(*RECORDS), tmp_path)
    assert run.exit_code == 1
    assert recorder.requests == []
    assert "stream 'docs': setting 'send_as_nested_attribute'" in run.stderr


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-ndjson; charset=utf-8"]
)
def test_a_json_content_type_of_the_users_is_sent_as_written(
    recorder, httpserver, tmp_path, content_type
):
    settings = {"headers": {"Content-Type": content_type}}
    run = run_inprocess(config(httpserver, **settings), singer(*RECORDS[:2]), tmp_path)
    assert run.exit_code == 0, run.stderr
    [seen] = recorder.requests
    assert seen.header("Content-Type") == content_type
    assert ndjson_lines(seen.body) == [r.encode() for r in RECORDS[:2]]
