"""What became of each record of a request whose answer speaks per record.

Turns a verdict into what the error file, the response file and the stopping error say
about each record: for a record whose own entry failed `item_success_condition`, its
position, its entry (masked, cut) and the condition; for every record, its fields.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        # A verdict with failed items always has their entries.
        entry = excerpt(entry_text(verdict.entries[index]), redactor)  # type: ignore[index]
        problem = f"item {index + 1} of {count} fails {condition}: {entry}"
        failures.append(ItemFailure(index, problem, entry))
    return failures


def error_details(
    where: str, method: str, url: str, status: int, attempts: int, item: ItemFailure
) -> dict[str, Any]:
    """A failed item's error file fields: its own entry is the answer."""
    return {
        "error": f"{where}, but {item.problem}",
        "method": method,
        "url": url,
        "status": status,
        "answer": item.entry,
        "attempts": attempts,
        "item": item.index + 1,  # its place in the request, as in the message
    }


def record_results(
    count: int,
    keys: list[dict[str, Any]],
    error: str | None,
    verdict: Verdict | None,
    failures: Sequence[ItemFailure],
) -> list[tuple[dict[str, Any], str | None, dict[str, Any] | None]]:
    """Each record's (key properties, error, picked fields), in input order.

    `keys` is empty when the stream has no key properties; `error` is the request's.
    """
    fields = verdict.fields if verdict is not None and verdict.fields else [None] * count
    errors = [error] * count
    for item in failures:
        errors[item.index] = item.problem
    return list(zip(keys or [{}] * count, errors, fields, strict=True))


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
