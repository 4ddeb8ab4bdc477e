"""A sink gets all it needs of the run from one frozen `Services`, never from the target."""

from __future__ import annotations

import ast
import dataclasses
import logging
import threading
from pathlib import Path

import pytest

import target_restapi
from target_restapi.output.notices import Notices
from target_restapi.output.progress import Tally
from target_restapi.output.redact import Redactor
from target_restapi.output.state import StateTracker
from target_restapi.services import OutputFiles, RateLimits, Services

PACKAGE = Path(target_restapi.__file__).parent
MAX_MODULE_LINES = 400


def _services() -> Services:
    redactor = Redactor()
    return Services(
        config={},
        dry_run=True,
        redactor=redactor,
        stop=threading.Event(),
        line_number=lambda: 0,
        tracker=StateTracker(lambda _state: None),
        credentials=None,  # type: ignore[arg-type]
        connections=None,  # type: ignore[arg-type]
        workers=None,  # type: ignore[arg-type]
        rate_limits=RateLimits({}, dry_run=True),
        files=OutputFiles(redactor),
        notices=Notices(logging.getLogger("test")),
    )


def test_services_cannot_be_swapped_out_from_under_a_sink() -> None:
    services = _services()
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.tracker = StateTracker(lambda _state: None)  # type: ignore[misc]


def test_a_streams_counts_outlive_its_sink() -> None:
    services = _services()
    tally = services.tally_for("users")
    assert isinstance(tally, Tally)
    assert services.tally_for("users") is tally
    assert services.tallies == {"users": tally}


def _target_uses(module: Path) -> list[str]:
    """How the module's code uses a name `target`, other than `target.services`."""
    tree = ast.parse(module.read_text())
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "services":
            allowed.add(id(node.value))
        if (  # handed on to the SDK's Sink.__init__
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
        ):
            allowed.update(id(arg) for arg in node.args)
    return [
        f"{module.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "target" and id(node) not in allowed
    ]


@pytest.mark.parametrize("module", ["sinks.py", "stream/delivery.py", "stream/pending.py"], ids=str)
def test_the_sink_reads_only_services_off_the_target(module: str) -> None:
    assert _target_uses(PACKAGE / module) == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
