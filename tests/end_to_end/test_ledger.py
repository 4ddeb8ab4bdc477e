"""The ledger test: generated runs end to end, every record accounted for after each.

Hypothesis generates Singer input (several streams, SCHEMA changes, STATE anywhere,
BATCH messages, a bad line somewhere), settings (every request mode, batch sizes,
concurrency, fail_on_error both ways, retries, gzip, nested bodies) and receiver faults
(error statuses, retryable or not, delays, dropped connections). The target runs
in-process against one loopback receiver; tests/support/ledger.py says what is checked.

LEDGER_EXAMPLES sets the number of runs (default 200); LEDGER_RANDOM=1 explores new
cases instead of the fixed, derandomized sequence used in CI. See docs/development.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, note, settings
from support.inprocess import Run, run_inprocess
from support.ledger import Outcome, check_ledger, error_file_ids
from support.receiver import FaultyReceiver
from support.run import run_target
from support.singer_cases import (
    BAD_KINDS,
    ERROR_FILE,
    FIXED_SETTINGS,
    Case,
    Event,
    Fault,
    Line,
    cases,
)

EXAMPLES = int(os.environ.get("LEDGER_EXAMPLES", "200"))
RANDOM = os.environ.get("LEDGER_RANDOM") == "1"
# Shrinking a failure to a minimal case takes minutes here: on request only. Without it
# the failing case is reported as generated, input, settings and log included.
SHRINK = os.environ.get("LEDGER_SHRINK") == "1"
SUBPROCESS_EXAMPLES = 2  # and two explicit ones; each costs a second of start-up

ledger_settings = settings(
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if SHRINK else [])],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def receiver():
    """One receiver for every run of the module; each run gets its own URL prefix."""
    server = FaultyReceiver()
    yield server
    server.close()


def run_case(case: Case, receiver: FaultyReceiver, folder: Path, *, subprocess: bool) -> None:
    """Run the target on one case and check the ledger; notes say what ran, for a failure."""
    data, lines = case.input(folder)
    config = case.config(receiver.begin(case.faults), folder)
    note(f"input:\n{data.decode(errors='replace')}")
    note(f"config: {json.dumps(config)}")
    note(f"faults: {case.faults}")
    if subprocess:
        result = run_target(config, data, folder)
        run = Run(result.returncode, result.stdout, result.stderr)
    else:
        run = run_inprocess(config, data, folder)
    errors = error_file_ids(folder / ERROR_FILE)
    note(f"exit code {run.exit_code}; stdout:\n{run.stdout}\nlog:\n{run.stderr}")
    note(f"received: {receiver.accepted}\nerror file: {errors}")
    note(f"attempts: {dict(receiver.attempts)}; strays: {receiver.strays}")
    _label(lines, run)
    assert not receiver.strays, f"requests the receiver could not place: {receiver.strays}"
    check_ledger(case, lines, Outcome(run, receiver.accepted, receiver.attempts, errors))


@pytest.mark.slow
@settings(ledger_settings, max_examples=EXAMPLES)
@given(case=cases())
def test_every_record_is_accounted_for(receiver, case):
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=False)


def held_bad_state(*later: Event) -> Case:
    """A STATE with invalid UTF-8 that must wait for a record in `one` mode."""
    events = [Event("record"), Event("state_not_utf8"), Event("record"), *later]
    return Case(["s0"], events, {**FIXED_SETTINGS, "request_mode": "one"}, {}, [])


# Found by this test: invalid UTF-8 inside a STATE value passes the reader; only writing
# the STATE fails, so a held STATE ends the run with an unexpected error at the end of
# the input, or passes silently when a later STATE replaces it.
@settings(ledger_settings, max_examples=1, phases=[Phase.explicit])
@example(case=held_bad_state())
@example(case=held_bad_state(Event("state")))
@given(case=cases())
def test_a_held_state_that_is_not_utf8_is_a_bad_line(receiver, case):
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=False)


# Found by this test: a record of a mapped stream (the SDK's record path) that does not
# match its SCHEMA is logged by the SDK with its traceback before the one-line error.
@settings(ledger_settings, max_examples=1, phases=[Phase.explicit])
@example(
    case=Case(
        ["s0"],
        [Event("record"), Event("schema_mismatch"), Event("record")],
        FIXED_SETTINGS,
        {},
        [],
        mapped=True,
    )
)
@given(case=cases())
def test_a_bad_record_of_a_mapped_stream_is_one_line(receiver, case):
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=False)


# Two hand-picked runs for the subprocess check: a bad line amid retried and failed
# requests (fail_on_error false), and a failure that stops the run.
BAD_LINE_RUN = Case(
    streams=["s0", "s1"],
    events=[
        Event("record", 0),
        Event("record", 1),
        Event("state"),
        Event("record", 0),
        Event("batch", 1, size=2, gzip=True),
        Event("state"),
        Event("malformed_json"),
        Event("record", 0),
    ],
    settings={
        **FIXED_SETTINGS,
        "request_mode": "batch",
        "batch_size": 2,
        "fail_on_error": False,
        "max_concurrency": 2,
        "max_retries": 1,
        "send_as_nested_attribute": True,
        "compression": "gzip",
    },
    overrides={"s1": {"request_mode": "single"}},
    faults=[Fault(503), Fault(400), Fault(None), Fault(200, 0.01)],
)
FAILING_RUN = Case(
    streams=["s0"],
    events=[*[Event("record")] * 3, Event("state"), Event("record"), Event("state")],
    settings={**FIXED_SETTINGS, "fail_on_error": True, "max_retries": 0},
    overrides={},
    faults=[Fault(200), Fault(500)],
)


@settings(ledger_settings, max_examples=SUBPROCESS_EXAMPLES)
@example(case=BAD_LINE_RUN)
@example(case=FAILING_RUN)
@given(case=cases())
def test_every_record_is_accounted_for_as_a_subprocess(receiver, case):
    """The same check on a few runs as the CLI: stderr is the process's own, exit code too."""
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=True)


def _label(lines: list[Line], run: Run) -> None:
    """Statistics (pytest --hypothesis-show-statistics): which kinds of runs were tried."""
    event(f"exit code {run.exit_code}")
    bad = next((line.kind for line in lines if line.kind in BAD_KINDS), None)
    event(f"bad line: {bad}")
    summary = run.summary or {"total": {}}
    for count in ("failed", "retries", "not_sent"):
        event(f"{count}: {'some' if summary['total'].get(count) else 'none'}")
    event(f"STATE lines emitted: {'some' if run.stdout else 'none'}")
