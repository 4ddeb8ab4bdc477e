"""Records of a bulk request whose own entries failed `item_success_condition`.

Turns a verdict into what the error file, the response file and the stopping error say
about each failed record: its position, its entry (masked, cut) and the condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from target_restapi.delivery.answers import AnswerRules, Verdict, entry_text
from target_restapi.delivery.transport import excerpt
from target_restapi.errors import DeliveryError
from target_restapi.output.redact import Redactor
from target_restapi.shaping.bodies import encode_json


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One failed record of a request: its index, the reason, and its entry as text."""

    index: int
    problem: str  # "item 3 of 10 fails item_success_condition '...': {entry}"
    entry: str


def item_failures(
    rules: AnswerRules, verdict: Verdict | None, count: int, redactor: Redactor
) -> list[ItemFailure]:
    """The records of a `count`-record request whose entries failed, in input order."""
    if verdict is None or not verdict.failed:
        return []
    condition = rules.item_success.describe()  # type: ignore[union-attr]  # set when failed
    failures = []
    for index in verdict.failed:
        entry = excerpt(entry_text(verdict.entries[index]), redactor)  # type: ignore[index]
        problem = f"item {index + 1} of {count} fails {condition}: {entry}"
        failures.append(ItemFailure(index, problem, entry))
    return failures


def stopping_error(
    stream: str,
    where: str,
    status: int,
    failures: list[ItemFailure],
    keys: list[dict[str, Any]],
    redactor: Redactor,
) -> DeliveryError:
    """The one line that stops the run: the first failed entry and its record's keys.

    `where` names the request and its `status`; `keys` holds every record's key properties
    (empty when the stream has none).
    """
    first = failures[0]
    record = f" (record {encode_json(keys[first.index]).decode()})" if keys else ""
    more = f"; {len(failures) - 1} more items failed" if len(failures) > 1 else ""
    return DeliveryError(
        redactor.text(f"stream '{stream}': {where}, but {first.problem}{record}{more}"),
        status=status,
    )
