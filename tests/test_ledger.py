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
from hypothesis import HealthCheck, given, note, settings

from tests.conftest import run_target
from tests.support.inprocess import Run, run_inprocess
from tests.support.ledger import check_ledger, error_file_ids
from tests.support.receiver import FaultyReceiver
from tests.support.singer_cases import ERROR_FILE, Case, cases

EXAMPLES = int(os.environ.get("LEDGER_EXAMPLES", "200"))
RANDOM = os.environ.get("LEDGER_RANDOM") == "1"
SUBPROCESS_EXAMPLES = 4  # each costs a second of interpreter start-up

ledger_settings = settings(
    deadline=None,
    derandomize=not RANDOM,
    database=None,
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
    note(f"received: {receiver.accepted}\nerror file: {errors}\nstrays: {receiver.strays}")
    assert not receiver.strays, f"requests the receiver could not place: {receiver.strays}"
    check_ledger(case, lines, run, receiver.accepted, errors)


@settings(ledger_settings, max_examples=EXAMPLES)
@given(case=cases())
def test_every_record_is_accounted_for(receiver, case):
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=False)


@settings(ledger_settings, max_examples=SUBPROCESS_EXAMPLES)
@given(case=cases())
def test_every_record_is_accounted_for_as_a_subprocess(receiver, case):
    """The same check on a few runs as the CLI: stderr is the process's own, exit code too."""
    with tempfile.TemporaryDirectory(prefix="ledger-") as folder:
        run_case(case, receiver, Path(folder), subprocess=True)
