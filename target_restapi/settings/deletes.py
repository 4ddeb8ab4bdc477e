"""Hard deletes: the settings of the request a deleted record becomes, checked at start-up.

A record whose `_sdc_deleted_at` is not null is deleted at the source. With `hard_delete`
it becomes one request to `delete_url` (default `url`) with `delete_method` (default
DELETE), without a body unless `delete_payload` shapes one like `custom_payload`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_restapi.errors import SettingsError
from target_restapi.settings.request_target import checked_method, checked_url
from target_restapi.settings.schema import DEFAULTS
from target_restapi.shaping.deletes import DELETED_AT
from target_restapi.shaping.shapers import Shape, shape_problem
from target_restapi.templates import Template

DELETE_SETTINGS = ("delete_url", "delete_method", "delete_payload")


@dataclass(frozen=True, slots=True)
class DeleteSettings:
    """How a stream's deleted records are sent: URL template, method, optional body shape."""

    url: Template
    method: str
    payload: Shape | None  # None: the request has no body

    def templates(self) -> list[tuple[str, tuple[str, ...]]]:
        """(setting, fields) of every template, to check against the SCHEMA."""
        found = [("delete_url", self.url.fields)]
        template = None if self.payload is None else self.payload.payload_template()
        if template is not None:
            found.append(("delete_payload", template.fields))
        return found


def delete_settings(values: Mapping[str, Any], where: str) -> DeleteSettings | None:
    """The checked delete settings of merged `values`; None when hard_delete is off."""
    if not values["hard_delete"]:
        return None
    if values["request_mode"] == "one":
        raise SettingsError(
            f"{where}: hard_delete cannot be used with request_mode 'one': its one request "
            "goes at the end of the input, so a delete could not keep its place among the "
            "records (a record added again after its delete would be deleted); use "
            "request_mode 'batch' with a large batch_size"
        )
    url = checked_url(
        str(values.get("delete_url") or values["url"]),
        "delete_url",
        allow_record_hosts=bool(values["allow_record_hosts"]),
        where=where,
    )
    method = checked_method(values["delete_method"], "delete_method", where)
    payload = values.get("delete_payload")
    if payload is not None and method == "GET":
        raise SettingsError(
            f"{where}: setting 'delete_payload' cannot be sent with delete_method GET, which "
            "carries no body; remove delete_payload or use another delete_method"
        )
    return DeleteSettings(url, method, _payload_shape(values, payload, where))


def _payload_shape(values: Mapping[str, Any], payload: str | None, where: str) -> Shape | None:
    """delete_payload as the body of one record in the stream's body_format."""
    if payload is None:
        return None
    shape = Shape(
        body_format=values["body_format"],
        custom_payload=payload,
        csv_delimiter=str(values["csv_delimiter"]),
    )
    try:
        shape.payload_template()
    except ValueError as exc:
        message = str(exc).replace("custom_payload", "delete_payload")
        raise SettingsError(f"{where}: {message}; fix the template") from None
    problem = shape_problem(shape, single=True)
    if problem:
        raise SettingsError(f"{where}: {problem.replace('custom_payload', 'delete_payload')}")
    return shape


def unused_delete_settings(
    values: Mapping[str, Any], own: Mapping[str, Any], *, deleting_elsewhere: bool = False
) -> list[str]:
    """Delete settings given where hard_delete is off: they do nothing (said once at start).

    `deleting_elsewhere`: a stream turns hard_delete on and may inherit these settings.
    """
    # The SDK fills in the top level's defaults: a default asks for nothing.
    given = [name for name in DELETE_SETTINGS if own.get(name) not in (None, DEFAULTS.get(name))]
    if not given or values["hard_delete"] or deleting_elsewhere:
        return []
    names = ", ".join(f"'{name}'" for name in given)
    return [
        f"{names} {'has' if len(given) == 1 else 'have'} no effect until 'hard_delete' is "
        "true; set hard_delete: true to send deleted records as delete requests, or remove "
        f"{'it' if len(given) == 1 else 'them'}"
    ]


def lacks_deleted_at(stream: str) -> str:
    """The warning for a stream with hard_delete whose SCHEMA cannot mark deleted records."""
    return (
        f"stream '{stream}': hard_delete is true but its SCHEMA has no '{DELETED_AT}' "
        "property, which marks deleted records, so its records will probably all be sent as "
        "records; have the tap add it: LOG_BASED replication reports deleted rows with it, "
        "and some taps add it with a setting such as add_record_metadata"
    )
