"""Deleted records (hard_delete) shaped into the body of their delete request.

A delete request stands for one record whatever its body: without `delete_payload` it has
none, yet its record is counted, acknowledged and written to the error file like any.
Pure: no I/O, no Singer, no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from target_restapi.shaping.bodies import Body, MultipartBody
from target_restapi.shaping.shapers import Shape, make_shaper

DELETED_AT = "_sdc_deleted_at"


class _Mark(msgspec.Struct):
    """The one field of a record that says whether it was deleted."""

    deleted_at: Any = msgspec.field(name=DELETED_AT, default=None)


_mark = msgspec.json.Decoder(_Mark)


def is_deleted(record: Mapping[str, Any] | None, raw: bytes | None) -> bool:
    """Whether the tap marked the record deleted at the source.

    From the raw JSON when the record was not decoded: only that field is read, so
    records that pass through as received stay undecoded.
    """
    if record is not None:
        return record.get(DELETED_AT) is not None
    # Without the decoded record, its raw JSON is always given.
    return _mark.decode(raw).deleted_at is not None  # type: ignore[arg-type]


class NoBody:
    """The body of a request that carries none, counting the records it stands for."""

    __slots__ = ("count",)
    content_type = ""
    size = 0

    def __init__(self) -> None:
        self.count = 0

    def add(self, item: Any) -> None:
        """One more record; nothing of it is sent."""
        self.count += 1

    def finish(self) -> None:
        """No body is sent."""
        return


class DeleteShaper:
    """The body of each delete request: none, or `delete_payload` filled from the record."""

    def __init__(self, template: Shape | None, columns: Sequence[str]) -> None:
        self._shaper = None if template is None else make_shaper(template, columns, single=True)

    def body(self, record: Mapping[str, Any]) -> tuple[Body | MultipartBody | NoBody, Any]:
        """The body for one deleted record, and its item (what an idempotency key hashes)."""
        body: Body | MultipartBody | NoBody
        item: Any  # what the shaper's body takes: bytes, or a form's field pairs
        if self._shaper is None:
            body, item = NoBody(), b""
        else:
            item = self._shaper.item(record, None, 0)
            body = self._shaper.new_body(spool=False)
        body.add(item)
        return body, item
