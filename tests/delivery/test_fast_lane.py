"""The lane of the batch path (stream/fast_lane.py) decides exactly as the full path.

The same input goes once through the fast lane and once through the full path (which a
byte cap no body reaches forces, leaving the bodies alike): the bodies sent, the STATE
lines, the summary, the error lines and the error file must not differ, whatever mix of
records the fast lane takes, records it hands over (an integer written `3.0`, which only
the full check accepts; an invalid record, which stops the run), STATEs and failed
requests, however few records the reader collects before settling them, with or without
an error file, idempotency keys and response files (which name a request's first and last
records by their keys).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.inprocess import run_inprocess
from support.run import NO_RETRY, failing

from target_restapi.singer_input import reader

SCHEMA = {
    "type": "SCHEMA",
    "stream": "items",
    "key_properties": ["id"],
    "schema": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
    },
}
FAILING = 3  # a request that carries this id is answered 500
entries = st.lists(
    st.one_of(
        # Mostly plain records: runs of them are what the lane collects.
        st.tuples(st.just("record"), st.text(max_size=5)),
        st.tuples(st.just("record"), st.text(max_size=5)),
        st.tuples(st.just("record"), st.text(max_size=5)),
        st.tuples(st.just("float id"), st.none()),  # msgspec refuses it, JSON Schema does not
        st.tuples(st.just("state"), st.none()),
        st.tuples(st.just("invalid"), st.none()),  # ends the run
    ),
    max_size=40,
)


def singer(plan: list[tuple[str, str | None]]) -> str:
    lines = [json.dumps(SCHEMA)]
    for i, (kind, text) in enumerate(plan):
        if kind == "state":
            lines.append(json.dumps({"type": "STATE", "value": {"n": i}}))
            continue
        record: dict = {"id": i, "text": text or ""}
        if kind == "float id":
            record["id"] = float(i)
        elif kind == "invalid":
            record["id"] = "not a number"
        lines.append(json.dumps({"type": "RECORD", "stream": "items", "record": record}))
    return "\n".join(lines) + "\n"


VARIABLE = ("time", "elapsed_ms", "headers")  # what differs between two runs of one input


def outcome(recorder, config: dict, data: str) -> tuple:
    recorder.requests.clear()
    with tempfile.TemporaryDirectory() as folder:
        errors, answers = Path(folder) / "errors.jsonl", Path(folder) / "responses"
        if config.get("error_file_path") is not None:
            config = {**config, "error_file_path": str(errors)}
        if config.get("save_responses"):
            config = {**config, "response_file_path": str(answers)}
        run = run_inprocess(config, data, Path(folder) / "run")
        kept = errors.read_text().splitlines() if errors.exists() else []
        kept += [
            line for file in sorted(answers.glob("*")) for line in file.read_text().splitlines()
        ]
    entries = [json.loads(line) for line in kept]
    for entry in entries:
        for name in VARIABLE:
            entry.pop(name, None)
    summary = run.summary
    summary.pop("seconds")  # elapsed time: the one figure that may differ
    errors_logged = [line.split("|", 3)[-1] for line in run.errors]
    sent = [(seen.body, seen.header("Idempotency-Key")) for seen in recorder.requests]
    return run.exit_code, run.stdout, summary, errors_logged, sent, entries


FEATURES = {
    "error file": {"error_file_path": "set per run"},
    "idempotency key": {"idempotency_key_header": "Idempotency-Key"},
    "responses": {"save_responses": True},  # with a key property: first and last keys
}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    plan=entries,
    mode=st.sampled_from(["batch", "one"]),
    batch_size=st.integers(1, 6),
    features=st.sets(st.sampled_from(sorted(FEATURES))),
    collected=st.sampled_from([1, 2, 3, reader.DUE_CHECK_LINES]),
)
# The input ends amid collected records: they are settled, then sent.
@example(plan=[("record", "")] * 5, mode="batch", batch_size=6, features=set(), collected=256)
@example(plan=[("record", "")] * 9, mode="one", batch_size=1, features=set(FEATURES), collected=2)
def test_the_fast_lane_sends_and_reports_as_the_full_path(
    recorder, httpserver, monkeypatch, plan, mode, batch_size, features, collected
):
    monkeypatch.setattr(reader, "DUE_CHECK_LINES", collected)  # records per settle, at most
    recorder.respond = failing({FAILING})
    config = {
        "url": httpserver.url_for("/items"),
        "request_mode": mode,
        "batch_size": batch_size,
        "fail_on_error": False,
        **NO_RETRY,
    }
    for feature in features:
        config.update(FEATURES[feature])
    data = singer(plan)
    fast = outcome(recorder, config, data)
    full = outcome(recorder, {**config, "batch_max_bytes": 10**12}, data)
    assert fast == full
    if "invalid" not in [kind for kind, _ in plan]:
        assert fast[0] == 0, fast
