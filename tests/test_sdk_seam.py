"""The seam to singer-sdk: the private names we rely on still exist, and only it imports the SDK.

Each check comes from `PRIVATE_NAMES` in target_restapi/sdk_seam.py: adding a name there
adds its check here. A failure means an SDK release removed or renamed a private name the
target relies on, or changed the signature of a method it overrides.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import target_restapi
from target_restapi.sdk_seam import PRIVATE_NAMES, Private, SeamTarget, Sink, Target

PACKAGE = Path(target_restapi.__file__).parent
MAX_SDK_IMPORTERS = 3


class _Changed(Sink):
    def process_record(self, record: dict, context: dict, extra: int) -> None:  # type: ignore[override]
        """An override whose parameters no longer match the SDK's."""


def _label(private: Private) -> str:
    return f"{private.owner.__name__}.{private.name}"


def _parameters(function: object) -> list[str]:
    if isinstance(function, classmethod | staticmethod):
        function = function.__func__
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def _problem(private: Private) -> str | None:
    """What an SDK release broke of a relied-on name, or None."""
    if private.kind == "attribute":  # instance attributes: set by the owner's __init__
        assigned = rf"self\.{private.name}\s*(:|=)"
        if not re.search(assigned, inspect.getsource(private.owner.__init__)):
            return f"{_label(private)} is no longer set by __init__"
        return None
    try:
        sdk = inspect.getattr_static(private.owner, private.name)
    except AttributeError:
        return f"{_label(private)} is gone"
    if private.kind == "override":
        if private.ours is None or private.name not in vars(private.ours):
            return f"{_label(private)}: the seam class that overrides it is not named"
        ours = vars(private.ours)[private.name]
        if _parameters(ours) != _parameters(sdk):
            return f"{_label(private)} takes {_parameters(sdk)}, we override {_parameters(ours)}"
    return None


@pytest.mark.parametrize("private", PRIVATE_NAMES, ids=_label)
def test_private_name_still_in_the_sdk(private: Private) -> None:
    assert _problem(private) is None, private.why


@pytest.mark.parametrize(
    "private",
    [
        Private(Target, "_process_record_msg", "override", "renamed", SeamTarget),
        Private(Target, "_sinks_gone", "attribute", "removed"),
        Private(Sink, "_singer_check", "call", "removed"),
        Private(Sink, "process_record", "override", "signature changed", _Changed),
    ],
    ids=_label,
)
def test_a_removed_renamed_or_changed_name_is_caught(private: Private) -> None:
    assert _problem(private) is not None


def test_kinds_are_known() -> None:
    assert {p.kind for p in PRIVATE_NAMES} <= {"override", "call", "attribute"}


def test_every_private_sdk_name_used_is_listed() -> None:
    """A private name the seam reaches (`self._x`, `super()._x`) must be in PRIVATE_NAMES."""
    tree = ast.parse((PACKAGE / "sdk_seam.py").read_text())
    listed = {p.name for p in PRIVATE_NAMES}
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and isinstance(node.value, ast.Name | ast.Call)
    }
    overridden = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_")
    }
    assert (used | overridden) - {"__init__"} <= listed


def _imports_sdk(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "singer_sdk" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "singer_sdk":
            return True
    return False


def test_at_most_three_modules_import_the_sdk() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if _imports_sdk(path)
    )
    assert len(importers) <= MAX_SDK_IMPORTERS, importers
    assert "sdk_seam.py" in importers


def test_private_sdk_names_are_reached_only_through_the_seam() -> None:
    """Our Target and Sink subclasses neither define nor touch a private SDK name."""
    names = {p.name for p in PRIVATE_NAMES}
    offenders = []
    subclasses = 0
    for path in PACKAGE.rglob("*.py"):
        if path.name == "sdk_seam.py":
            continue
        for cls in ast.walk(ast.parse(path.read_text())):
            bases = {getattr(b, "id", None) for b in getattr(cls, "bases", ())}
            if not isinstance(cls, ast.ClassDef) or not bases & {"SeamTarget", "SeamSink"}:
                continue
            subclasses += 1
            for node in ast.walk(cls):
                name = getattr(node, "attr", None) or getattr(node, "name", None)
                if name in names:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {name}")
    assert subclasses == 2  # TargetRestApi and RestSink
    assert not offenders
