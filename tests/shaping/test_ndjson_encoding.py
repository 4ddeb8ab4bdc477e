"""The NDJSON encoder, pure: any records give a body that parses back, line by line, into
the same documents, whether a record comes as the tap's raw text (any JSON whitespace, CR
included) or only decoded (stream maps), in memory or spooled, one record or many."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from target_restapi.shaping.mappings import FieldMapping
from target_restapi.shaping.shapers import Shape, make_shaper

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
RECORDS = st.dictionaries(st.text(max_size=8), VALUES, max_size=5)
# What a tap may write between tokens: JSON allows space, tab, CR (a line holds no LF).
COMMAS = st.sampled_from([",", ", ", ",\r", "\t,\r "])
COLONS = st.sampled_from([":", ": ", "\r:\t"])


@st.composite
def arrivals(draw: st.DrawFn, records: st.SearchStrategy = RECORDS) -> tuple[dict, bytes | None]:
    """A record and its raw text as a tap might write it, or None (it came decoded)."""
    record = draw(records)
    if draw(st.booleans()):
        return record, None
    separators = (draw(COMMAS), draw(COLONS))
    text = json.dumps(record, ensure_ascii=draw(st.booleans()), separators=separators)
    return record, text.encode()


def body_of(shape: Shape, received: list[tuple[dict, bytes | None]], *, spool: bool) -> bytes:
    """The body one request carries for these records, checking its announced size."""
    shaper = make_shaper(shape, [], single=len(received) == 1)
    body = shaper.new_body(spool=spool)
    for index, (record, raw) in enumerate(received):
        body.add(shaper.item(record, raw, index))
    data = body.finish()
    sent = data if isinstance(data, bytes) else data.read()
    body.close()
    assert body.size == len(sent), "batch_max_bytes counts what is sent"
    assert body.content_type == "application/x-ndjson"
    return sent


def documents(body: bytes) -> list[Any]:
    """Each line of an NDJSON body parsed, checking the format: LF after every line, no CR."""
    assert body.endswith(b"\n") and b"\r" not in body, body
    return [json.loads(line) for line in body.split(b"\n")[:-1]]


@given(st.lists(arrivals(), min_size=1, max_size=6), st.booleans())
def test_any_records_parse_back_line_by_line(received, spool):
    body = body_of(Shape(body_format="ndjson"), received, spool=spool)
    assert documents(body) == [record for record, _ in received]


@given(st.lists(arrivals(), min_size=1, max_size=4), st.booleans())
def test_a_bulk_template_gives_an_action_line_then_the_record(received, spool):
    shape = Shape(body_format="ndjson", custom_payload='{"index": {"_id": "#{id}"}}\n"#{*}"\n')
    lines = documents(body_of(shape, received, spool=spool))
    expected = []
    for record, _ in received:
        expected += [{"index": {"_id": record.get("id")}}, record]
    assert lines == expected


@given(
    st.lists(arrivals(st.fixed_dictionaries({"a": VALUES, "b": VALUES})), min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=6), VALUES, max_size=3),
    st.booleans(),
)
def test_static_fields_and_mappings_make_each_line(received, static, spool):
    mappings = (FieldMapping("first", "a"), FieldMapping("second", "b"))
    shape = Shape(body_format="ndjson", static_fields=static, mappings=mappings)
    lines = documents(body_of(shape, received, spool=spool))
    assert lines == [{**static, "first": r["a"], "second": r["b"]} for r, _ in received]
