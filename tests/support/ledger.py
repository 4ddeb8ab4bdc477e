"""The ledger of one run: where every record of the input went, checked against the summary.

Every record the target read is in exactly one place: received by the server (answered
2xx), in the error file (its stream has fail_on_error false), or counted as not sent
(failed with fail_on_error true, interrupted, not_sent). Records are read in input order,
so what was read is a prefix of the input: the summary's `received` says how long.
A STATE on stdout may only follow records that are received or in the error file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from support.inprocess import Run
from support.singer_cases import BAD_KINDS, Case, Line

# The one-line error the target logs for an exception it did not plan for.
UNEXPECTED = re.compile(r"unexpected [A-Z]\w*: ")
COUNTS = ("received", "delivered", "failed", "requests", "retries", "interrupted", "not_sent")


@dataclass(frozen=True)
class Rec:
    """One record of the input: its id, stream and input line."""

    id: int
    stream: str
    line: int


def error_file_ids(path: Path) -> dict[str, list[int]]:
    """The ids of the records in the error file, per stream, in file order."""
    found: dict[str, list[int]] = {}
    if path.exists():
        for text in path.read_text().splitlines():
            entry = json.loads(text)
            found.setdefault(entry["stream"], []).append(entry["record"]["id"])
    return found


@dataclass
class Outcome:
    """What a run left behind: the run itself and, per stream, what the server accepted
    (record ids), the attempts it saw, and the record ids in the error file."""

    run: Run
    received: dict[str, list[int]]
    attempts: dict[str, int]
    errors: dict[str, list[int]]


def check_ledger(case: Case, lines: list[Line], outcome: Outcome) -> None:
    """Assert that the run accounted for every record it read, and emitted STATE safely."""
    run = outcome.run
    _check_clean(run)
    streams = _summary(run)
    records = [Rec(ident, line.stream or "", line.number) for line in lines for ident in line.ids]
    first_bad = next((line.number for line in lines if line.kind in BAD_KINDS), None)
    # A bad BATCH line's records before its bad one are read too: `<=`.
    readable = [rec for rec in records if first_bad is None or rec.line <= first_bad]
    read = _read(records, streams)
    assert len(read) <= len(readable), "records counted as received past a bad line"
    accounted = _check_places(records, read, outcome)
    fatal = _check_counts(case, streams, outcome)

    # How the run ended.
    assert run.exit_code == (1 if fatal or first_bad is not None else 0), (
        f"exit code {run.exit_code}"
    )
    if run.exit_code:
        assert run.errors, "exit code 1 without an ERROR line"
    if not fatal:
        assert len(read) == len(readable), "records before the end or a bad line were not read"
        lost = {n: c for n, c in streams.items() if c["interrupted"] or c["not_sent"]}
        assert not lost, f"records not sent though nothing failed for good: {lost}"
        if first_bad is not None:
            assert any(f"input line {first_bad}:" in e for e in run.errors), (
                f"no ERROR line names input line {first_bad}"
            )

    _check_states(lines, run, records, accounted, first_bad, fatal)


def _check_clean(run: Run) -> None:
    """No traceback, no error nobody planned for, no thread left behind."""
    assert run.traceback is None, f"a traceback:\n{run.traceback}"
    unexpected = [line for line in run.errors if UNEXPECTED.search(line)]
    assert not unexpected, f"an exception nobody planned for: {unexpected}"
    assert not run.leaked_threads, f"threads left running: {run.leaked_threads}"


def _summary(run: Run) -> dict[str, dict[str, int]]:
    """The summary's counts per stream, every count present and the total their sum."""
    summary = run.summary
    assert summary is not None, "no JSON summary line in the log"
    streams = summary["streams"]
    for name, counts in [*streams.items(), ("total", summary["total"])]:
        missing = [count for count in COUNTS if count not in counts]
        assert not missing, f"summary of {name} lacks {missing}: {counts}"
    for count in COUNTS:
        added = sum(counts[count] for counts in streams.values())
        assert summary["total"][count] == added, f"total {count} is not the streams' sum"
    return streams


def _read(records: list[Rec], streams: dict[str, dict[str, int]]) -> list[Rec]:
    """The records the run read: as many as received, in input order, in every stream."""
    read = records[: sum(counts["received"] for counts in streams.values())]
    per_stream = Counter(rec.stream for rec in read)
    for name in set(streams) | set(per_stream):
        got = streams.get(name, {}).get("received", 0)
        assert got == per_stream[name], (
            f"stream {name}: {got} received, but the first {len(read)} records of the input "
            f"hold {per_stream[name]} of it: records were skipped or counted out of order"
        )
    return read


def _check_places(records: list[Rec], read: list[Rec], outcome: Outcome) -> set[int]:
    """Each record read is in at most one place, its own stream's; the ids accounted for."""
    stream_of = {rec.id: rec.stream for rec in records}
    read_ids = {rec.id for rec in read}
    places = [("received by the server", outcome.received), ("in the error file", outcome.errors)]
    for where, found in places:
        for name, ids in found.items():
            twice = [i for i, n in Counter(ids).items() if n > 1]
            assert not twice, f"stream {name}: records {twice} {where} twice"
            alien = [i for i in ids if stream_of.get(i) != name]
            assert not alien, f"records {alien} {where} under stream {name}, not their own"
            unread = sorted(set(ids) - read_ids)
            assert not unread, f"records {unread} {where} but not counted as received"
    accepted = {i for ids in outcome.received.values() for i in ids}
    failed = {i for ids in outcome.errors.values() for i in ids}
    both = sorted(accepted & failed)
    assert not both, f"records {both} both received by the server and in the error file"
    return accepted | failed


def _check_counts(case: Case, streams: dict[str, dict[str, int]], outcome: Outcome) -> bool:
    """The summary adds up and matches the server and the error file; True when a
    failure stopped the run (a stream with fail_on_error true failed)."""
    fatal = False
    for name, counts in streams.items():
        fail_on_error = case.stream_setting(name, "fail_on_error")
        fatal = fatal or (fail_on_error and counts["failed"] > 0)
        parts = ("delivered", "failed", "interrupted", "not_sent")
        assert counts["received"] == sum(counts[p] for p in parts), (
            f"stream {name}: received != delivered + failed + interrupted + not_sent: {counts}"
        )
        accepted = len(outcome.received.get(name, []))
        assert counts["delivered"] == accepted, (
            f"stream {name}: {counts['delivered']} delivered, the server accepted {accepted}"
        )
        seen = outcome.attempts.get(name, 0)
        assert seen == counts["requests"] + counts["retries"], (
            f"stream {name}: the server saw {seen} attempts, the summary says "
            f"{counts['requests']} requests and {counts['retries']} retries"
        )
        in_file = len(outcome.errors.get(name, []))
        assert in_file == (0 if fail_on_error else counts["failed"]), (
            f"stream {name} (fail_on_error {fail_on_error}): {counts['failed']} failed, "
            f"{in_file} in the error file"
        )
    return fatal


def _check_states(
    lines: list[Line],
    run: Run,
    records: list[Rec],
    accounted: set[int],
    first_bad: int | None,
    fatal: bool,
) -> None:
    """Each STATE printed follows only records received or in the error file."""
    try:
        positions = [state["pos"] for state in run.states]
    except (ValueError, TypeError, KeyError):
        raise AssertionError(f"stdout holds more than the STATE given:\n{run.stdout}") from None
    assert positions == sorted(set(positions)), f"STATE lines out of order: {positions}"
    given = [
        line.number
        for line in lines
        if line.kind == "state" and (first_bad is None or line.number < first_bad)
    ]
    for pos in positions:
        assert pos in given, f"STATE {pos} was never given (or came after a bad line)"
        behind = [rec.id for rec in records if rec.line < pos and rec.id not in accounted]
        assert not behind, (
            f"STATE {pos} emitted though records {behind} before it were neither received "
            "nor in the error file"
        )
    if given and not fatal:
        assert positions and positions[-1] == given[-1], (
            f"every record was accounted for, but the last STATE ({given[-1]}) "
            f"was not emitted: {positions}"
        )
