"""Hypothesis strategies for whole runs: Singer input, the target's settings, receiver faults.

A `Case` is plain data; `Case.input(folder)` and `Case.config(url, folder)` turn it into
the bytes and settings of one run. Every record carries a unique integer `id` and every
STATE the value `{"pos": <its own input line number>}`, so what reached the receiver,
the error file and stdout can be traced back to the input line by line.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

MODES = ("single", "batch", "one")
BAD_KINDS = (
    "malformed_json",  # a RECORD line cut short
    "no_schema",  # a RECORD of a stream that never had a SCHEMA
    "schema_mismatch",  # a RECORD whose id is not an integer
    "state_not_utf8",  # invalid UTF-8 inside a STATE value
    "record_not_utf8",  # invalid UTF-8 inside a record's string
    "unknown_type",
    "state_without_value",
    "bad_batch",  # a BATCH file whose good records are followed by a bad one
    "batch_missing_file",  # a BATCH manifest naming a file that does not exist
)
NEEDS_SCHEMA = ("record", "unroutable", "batch", "bad_batch", "batch_missing_file")
OK_STATUSES = (200, 201, 202, 204)
ERROR_STATUSES = (400, 404, 422, 500, 503, 429)  # the last three are retried
ERROR_FILE = "errors.jsonl"
# Generous: a request is answered within milliseconds, and one the receiver accepted
# must never time out and be sent again (it would then be received twice).
TIMEOUT_SECONDS = 30
# Every case: retries wait at most 10 ms, so a run stays fast however many it makes.
FIXED_SETTINGS = {"max_backoff_seconds": 0.01, "timeout_seconds": TIMEOUT_SECONDS}


@dataclass(frozen=True)
class Event:
    """One input line to come: a RECORD, STATE, SCHEMA change, BATCH or bad line."""

    kind: str  # "record", "unroutable", "state", "schema", "batch", "blank" or BAD_KINDS
    stream: int = 0  # index into the case's streams
    size: int = 0  # records in a BATCH file (its good ones, for a bad_batch)
    gzip: bool = False  # BATCH file compression
    twist: bool = False  # schema: a new property, not the same again; bad_batch: cut JSON


@dataclass(frozen=True)
class Fault:
    """How the receiver answers one request: a status after a delay, or a dropped connection."""

    status: int | None  # None: close the connection without answering
    delay: float = 0.0  # seconds, far below TIMEOUT_SECONDS


@dataclass
class Line:
    """One rendered input line and what it carries."""

    number: int  # 1-based input line number
    kind: str
    stream: str | None = None
    # Records it carries, in order; a bad BATCH line carries those before its bad record.
    ids: list[int] = field(default_factory=list)


@dataclass
class Case:
    """One generated run: streams, input events, settings and the receiver's faults."""

    streams: list[str]
    events: list[Event]
    settings: dict[str, Any]  # top-level settings other than url and error_file_path
    overrides: dict[str, dict[str, Any]]  # per-stream settings other than url
    faults: list[Fault]
    # URLs end in `#{g}` (the record's id % 3): requests of a stream go to three URLs,
    # so they can be in flight together; a record whose g is null cannot be sent.
    routed: bool = False
    # Stream s0 goes through a stream map (a computed property): the SDK's record path.
    mapped: bool = False

    def lines(self, folder: Path) -> list[tuple[bytes, Line]]:
        """The input lines with their meaning; BATCH files are written into `folder`."""
        out: list[tuple[bytes, Line]] = []
        schemas: dict[str, list[str]] = {}  # stream -> extra property names so far
        next_id = 1

        def emit(data: bytes | dict, kind: str, stream: str | None = None, ids=()) -> None:
            text = data if isinstance(data, bytes) else json.dumps(data).encode()
            out.append((text, Line(len(out) + 1, kind, stream, list(ids))))

        def schema(stream: str) -> None:
            extra = schemas.setdefault(stream, [])
            emit(_schema_message(stream, extra), "schema", stream)

        def record(stream: str, ident: int, *, route: bool = True) -> dict:
            extra = schemas[stream]
            body = {"id": ident, "v": f"r{ident}·", "g": ident % 3 if route else None}
            if extra:
                body[extra[-1]] = "x"
            return body

        def batch(stream: str, ids: list[int], event: Event, bad: bytes = b"") -> dict:
            suffix = ".gz" if event.gzip else ""
            path = folder / f"batch-{len(out) + 1}.jsonl{suffix}"
            data = b"".join(json.dumps(record(stream, i)).encode() + b"\n" for i in ids) + bad
            if event.kind != "batch_missing_file":
                path.write_bytes(gzip.compress(data) if event.gzip else data)
            compression = "gzip" if event.gzip else "none"
            return {
                "type": "BATCH",
                "stream": stream,
                "encoding": {"format": "jsonl", "compression": compression},
                "manifest": [path.as_uri()],
            }

        for event in self.events:
            stream = self.streams[event.stream % len(self.streams)]
            if event.kind in NEEDS_SCHEMA and stream not in schemas:
                schema(stream)
            if event.kind in ("record", "unroutable"):
                body = record(stream, next_id, route=event.kind == "record")
                emit(
                    {"type": "RECORD", "stream": stream, "record": body},
                    "record",
                    stream,
                    [next_id],
                )
                next_id += 1
            elif event.kind in ("batch", "bad_batch"):
                ids = list(range(next_id, next_id + event.size))
                next_id += event.size
                bad = b""
                if event.kind == "bad_batch":
                    bad = b'{"id": 0, "v": ' if event.twist else b'{"id": "zero"}\n'
                emit(batch(stream, ids, event, bad), event.kind, stream, ids)
            elif event.kind == "batch_missing_file":
                emit(batch(stream, [], event), event.kind, stream)
            elif event.kind == "state":
                emit({"type": "STATE", "value": {"pos": len(out) + 1}}, "state")
            elif event.kind == "schema":
                extra = schemas.setdefault(stream, [])
                if event.twist:
                    extra.append(f"w{len(out) + 1}")
                schema(stream)
            elif event.kind == "blank":
                emit(b"  ", "blank")
            else:
                emit(_bad_line(event.kind, stream if stream in schemas else None), event.kind)
        return out

    def input(self, folder: Path) -> tuple[bytes, list[Line]]:
        """The input bytes of the run and the meaning of each line."""
        lines = self.lines(folder)
        return b"".join(text + b"\n" for text, _ in lines), [line for _, line in lines]

    def config(self, url: str, folder: Path) -> dict[str, Any]:
        """The settings of the run: each stream posts to `url`/<stream>[/<g>].

        The error file is always set: it takes the failures of streams whose
        fail_on_error is false, and makes them traceable record by record.
        """
        config = {"url": f"{url}/default", **self.settings}
        route = "/#{g}" if self.routed else ""
        config["streams"] = {
            name: {"url": f"{url}/{name}{route}", **self.overrides.get(name, {})}
            for name in self.streams
        }
        config["error_file_path"] = str(folder / ERROR_FILE)
        if self.mapped:
            config["stream_maps"] = {"s0": {"m": "str(id * 2)"}}
        return config

    def stream_setting(self, stream: str, name: str) -> Any:
        """A setting as a stream sees it: its own value, else the top-level one."""
        return self.overrides.get(stream, {}).get(name, self.settings.get(name))


def _schema_message(stream: str, extra: list[str]) -> dict:
    properties: dict[str, Any] = {
        "id": {"type": "integer"},
        "v": {"type": ["string", "null"]},
        "g": {"type": ["integer", "null"]},
    }
    properties.update({name: {"type": ["string", "null"]} for name in extra})
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": ["id"],
    }


def _bad_line(kind: str, stream: str | None) -> bytes | dict:
    if kind == "malformed_json":
        return b'{"type": "RECORD", "stream": "s0", "record": {"id": 0'
    if kind == "schema_mismatch" and stream is not None:
        return {"type": "RECORD", "stream": stream, "record": {"id": "zero"}}
    if kind in ("no_schema", "schema_mismatch"):
        return {"type": "RECORD", "stream": "ghost", "record": {"id": 0}}
    if kind == "state_not_utf8":
        return b'{"type": "STATE", "value": "\xff\xfe"}'
    if kind == "record_not_utf8":
        name = (stream or "ghost").encode()
        return b'{"type": "RECORD", "stream": "' + name + b'", "record": {"id": 0, "v": "\xff"}}'
    if kind == "unknown_type":
        return {"type": "NOPE", "stream": "s0"}
    return {"type": "STATE"}


# Strategies

_event_kinds = st.sampled_from(
    ["record"] * 5 + ["state"] * 3 + ["schema", "batch", "blank", "unroutable"]
)
_event_fields = {
    "stream": st.integers(0, 2),
    "size": st.integers(0, 4),
    "gzip": st.booleans(),
    "twist": st.booleans(),
}
events = st.builds(Event, kind=_event_kinds, **_event_fields)
bad_events = st.builds(Event, kind=st.sampled_from(BAD_KINDS), **_event_fields)


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    """Mostly good input; a third of the cases hold a bad line somewhere."""
    found = draw(st.lists(events, min_size=1, max_size=25))
    bad = draw(st.one_of(st.none(), st.none(), bad_events))
    if bad is not None:
        found.insert(draw(st.integers(0, len(found))), bad)
    return found


faults = st.one_of(
    st.builds(Fault, st.sampled_from(OK_STATUSES), st.sampled_from([0.0, 0.0, 0.005, 0.02])),
    st.builds(Fault, st.sampled_from(ERROR_STATUSES), st.sampled_from([0.0, 0.005])),
    st.builds(Fault, st.none()),
)

_common = {
    "request_mode": st.sampled_from(MODES),
    "batch_size": st.integers(1, 4),
    "fail_on_error": st.booleans(),
}
top_settings = st.fixed_dictionaries(
    {
        **_common,
        "max_concurrency": st.integers(1, 3),
        "max_retries": st.integers(0, 2),
        "send_as_nested_attribute": st.booleans(),
        "compression": st.sampled_from(["none", "gzip"]),
    }
).map(lambda s: {**FIXED_SETTINGS, **s})
stream_overrides = st.fixed_dictionaries(
    {}, optional={**_common, "max_concurrency": st.integers(1, 3)}
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """One whole run to try."""
    streams = [f"s{i}" for i in range(draw(st.integers(1, 3)))]
    overrides = {name: draw(stream_overrides) for name in streams}
    return Case(
        streams=streams,
        events=draw(event_lists()),
        settings=draw(top_settings),
        overrides={name: value for name, value in overrides.items() if value},
        faults=draw(st.lists(faults, max_size=12)),
        routed=draw(st.booleans()),
        mapped=draw(st.booleans()),
    )
