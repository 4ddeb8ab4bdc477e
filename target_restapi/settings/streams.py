"""Per-stream resolution of settings.

`streams.<name>` overrides are merged over the top-level settings, then checked once,
so every stream gets a ready `StreamSettings` and the record path reads plain fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from target_restapi.auth.settings import AuthSettings
from target_restapi.delivery.answers import AnswerRules, compile_rules
from target_restapi.delivery.retry import DEFAULT_RETRY_STATUSES, RetryPolicy
from target_restapi.errors import SettingsError
from target_restapi.output.responses import check_folder
from target_restapi.settings.checks import method_problem, start_warnings
from target_restapi.settings.deletes import DeleteSettings, delete_settings, unused_delete_settings
from target_restapi.settings.request_target import checked_method, checked_url
from target_restapi.settings.schema import DEFAULTS
from target_restapi.shaping.mappings import mapping_problems, parse_mappings
from target_restapi.shaping.payload_templates import (
    FormPayload,
    JsonPayload,
    NdjsonPayload,
    TextPayload,
)
from target_restapi.shaping.shapers import Shape, content_type_problem, shape_problem
from target_restapi.templates import (
    WHOLE_RECORD,
    Template,
    header_name_problem,
    header_value_problem,
    schema_node,
    whole_record_problem,
)


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The settings one stream runs with, after merging and checking."""

    stream: str
    url: Template
    method: str
    headers: dict[str, Template]
    auth: AuthSettings
    request_mode: str
    batch_size: int
    batch_max_bytes: int | None
    batch_max_age_seconds: float
    max_open_batches: int
    sleep_seconds: float
    fail_on_error: bool
    timeout_seconds: float
    max_concurrency: int
    compression: str
    shape: Shape
    retry: RetryPolicy
    verify: bool | str
    error_file_path: str | None
    response_file_path: str | None
    response_file_format: str
    idempotency_key_header: str | None
    answers: AnswerRules
    deletes: DeleteSettings | None  # None: hard_delete is off

    def request_of(self, *, delete: bool) -> tuple[str, Template]:
        """The method and URL template of the stream's requests, or of its delete requests."""
        if delete and self.deletes is not None:
            return self.deletes.method, self.deletes.url
        return self.method, self.url

    def check_against_schema(
        self, schema: Mapping[str, Any], tap_schema: Mapping[str, Any] | None = None
    ) -> None:
        """Refuse templates and mappings that name fields the stream's SCHEMA lacks.

        Delete templates are checked against `tap_schema`, the SCHEMA before the SDK
        removed its `_sdc_*` properties: a deleted record keeps `_sdc_deleted_at`.
        """
        templates = [("url", self.url.fields)]
        templates += [(f"headers.{name}", t.fields) for name, t in self.headers.items()]
        payload = self.shape.payload_template()
        if payload is not None:
            templates.append(("custom_payload", payload.fields))
        problems = _undeclared(templates, schema)
        if self.deletes is not None:
            problems += _undeclared(self.deletes.templates(), tap_schema or schema)
        problems += [
            f"field_mappings: {problem}"
            for problem in mapping_problems(self.shape.mappings, schema)
        ]
        if problems:
            raise SettingsError(
                f"stream '{self.stream}': " + "; ".join(problems) + "; fix the settings or "
                "the tap's schema"
            )


def _undeclared(
    templates: list[tuple[str, tuple[str, ...]]], schema: Mapping[str, Any]
) -> list[str]:
    """A problem per template field the SCHEMA does not declare."""
    return [
        f"setting '{setting}' uses #{{{field}}}, which the SCHEMA does not declare"
        for setting, fields in templates
        for field in fields
        if field != WHOLE_RECORD and schema_node(schema, field) is None
    ]


def merged(config: Mapping[str, Any], stream: str) -> dict[str, Any]:
    """Top-level settings with the stream's overrides laid over them (nulls don't count)."""
    overrides = (config.get("streams") or {}).get(stream) or {}
    values = dict(DEFAULTS)
    for layer in (config, overrides):
        values.update((k, v) for k, v in layer.items() if k != "streams" and v is not None)
    return values


def renamed_entry(
    streams: Mapping[str, Any], stream: str, sources: list[str]
) -> dict[str, Any] | None:
    """The `streams` entry of a stream that stream_maps made from `sources`.

    The source stream's entry applies, with the stream's own entry laid over it setting
    by setting; None when no source has an entry. Two sources with entries are refused.
    """
    given = [source for source in sources if streams.get(source)]
    if not given:
        return None
    if len(given) > 1:
        raise SettingsError(
            f"stream '{stream}': stream_maps makes it from streams "
            f"{', '.join(repr(s) for s in given)}, and each has a 'streams' entry; "
            f"put the settings for it under streams.{stream}"
        )
    return {**streams[given[0]], **(streams.get(stream) or {})}


def resolve(config: Mapping[str, Any], stream: str) -> StreamSettings:
    """Build the checked settings of one stream; raise SettingsError naming the setting."""
    values = merged(config, stream)
    where = f"stream '{stream}'" if stream in (config.get("streams") or {}) else "settings"
    if not values.get("url"):
        raise SettingsError(f"{where}: setting 'url' is required; give the endpoint URL")
    url = checked_url(
        str(values["url"]),
        "url",
        allow_record_hosts=bool(values["allow_record_hosts"]),
        where=where,
    )
    method = checked_method(values["method"], "method", where)
    problem = method_problem(method, values["request_mode"])
    if problem:
        raise SettingsError(f"{where}: {problem}")
    headers = {str(k): str(v) for k, v in (values.get("headers") or {}).items()}
    for name, value in headers.items():
        # Every value rendered from the template holds its literal text: check it now.
        problem = header_name_problem(name) or header_value_problem(
            "x".join(Template.parse(value).literals)
        )
        if problem:
            raise SettingsError(f"{where}: setting 'headers': header '{name}' {problem}")
        problem = whole_record_problem(f"headers.{name}", Template.parse(value))
        if problem:
            raise SettingsError(f"{where}: {problem}")
    if values.get("ca_bundle") and not Path(values["ca_bundle"]).is_file():
        raise SettingsError(f"{where}: setting 'ca_bundle' names no readable file")
    if values["save_responses"]:
        folder = values.get("response_file_path")
        problem = check_folder(folder) if folder else "a folder or URL is needed"
        if problem:
            raise SettingsError(f"{where}: save_responses: setting 'response_file_path': {problem}")
    shape = _shape(values, where)
    return StreamSettings(
        stream=stream,
        url=url,
        method=method,
        headers={name: Template.parse(value) for name, value in headers.items()},
        auth=AuthSettings.from_values(values, where),
        request_mode=values["request_mode"],
        batch_size=int(values["batch_size"]),
        batch_max_bytes=values.get("batch_max_bytes"),
        batch_max_age_seconds=float(values["batch_max_age_seconds"]),
        max_open_batches=int(values["max_open_batches"]),
        sleep_seconds=int(values["request_sleep_interval_ms"]) / 1000,
        fail_on_error=bool(values["fail_on_error"]),
        timeout_seconds=float(values["timeout_seconds"]),
        max_concurrency=int(values["max_concurrency"]),
        compression=values["compression"],
        shape=shape,
        retry=RetryPolicy(
            max_retries=int(values["max_retries"]),
            max_backoff_seconds=float(values["max_backoff_seconds"]),
            statuses=frozenset(values.get("retry_on_status") or DEFAULT_RETRY_STATUSES),
        ),
        verify=tls_verify(config, stream),
        error_file_path=values.get("error_file_path"),
        response_file_path=values.get("response_file_path") if values["save_responses"] else None,
        response_file_format=values["response_file_format"],
        idempotency_key_header=values.get("idempotency_key_header"),
        answers=_answer_rules(values, where),
        deletes=delete_settings(values, where),
    )


def _answer_rules(values: Mapping[str, Any], where: str) -> AnswerRules:
    """The compiled answer settings; response_fields only where they are saved."""
    rules = compile_rules(values, where, request_mode=values["request_mode"])
    if rules.fields and not values["save_responses"]:
        rules = replace(rules, fields=())  # written nowhere: not worth picking per record
    return rules


def tls_verify(config: Mapping[str, Any], stream: str) -> bool | str:
    """What a stream verifies TLS with: a CA bundle's path, True, or False.

    The more specific level wins: a stream's `verify_tls: false` beats a top-level
    ca_bundle, a stream's ca_bundle beats a top-level `verify_tls: false`, and a stream's
    `verify_tls: true` verifies (with the top-level ca_bundle, if any). One level may not
    give both ca_bundle and `verify_tls: false`: they contradict.
    """
    overrides = (config.get("streams") or {}).get(stream) or {}
    verify_said = False  # a more specific level asked for verification
    for layer, where in ((overrides, f"stream '{stream}'"), (config, "settings")):
        bundle, verify_tls = layer.get("ca_bundle"), layer.get("verify_tls")
        if bundle and verify_tls is False:
            raise SettingsError(
                f"{where}: 'ca_bundle' verifies certificates but 'verify_tls' is false; "
                "remove one of them"
            )
        if bundle:
            return str(bundle)
        if verify_tls is False and not verify_said:
            return False
        verify_said = verify_said or verify_tls is True
    return True


def _shape(values: Mapping[str, Any], where: str) -> Shape:
    """Parse the body-shaping settings, refusing a bad template before any input."""
    if values.get("custom_payload") is not None and values.get("field_mappings"):
        raise SettingsError(
            f"{where}: 'custom_payload' and 'field_mappings' both shape the body; use one"
        )
    try:
        mappings = parse_mappings(values.get("field_mappings") or [])
    except KeyError as exc:
        raise SettingsError(
            f"{where}: setting 'field_mappings': an entry lacks {exc}; each entry needs "
            "field_name and column_name"
        ) from None
    except ValueError as exc:
        raise SettingsError(f"{where}: setting 'field_mappings': {exc}") from None
    shape = Shape(
        body_format=values["body_format"],
        custom_payload=values.get("custom_payload"),
        nested_attribute=(
            values["nested_attribute_name"] if values["send_as_nested_attribute"] else None
        ),
        nested_attribute_name=values["nested_attribute_name"],
        static_fields=dict(values.get("static_fields") or {}),
        mappings=mappings,
        set_field_name=bool(values["set_field_name"]),
        csv_delimiter=str(values["csv_delimiter"]),
    )
    try:
        template = shape.payload_template()
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}; fix the template") from None
    if shape.custom_payload is not None and isinstance(template, TextPayload | FormPayload):
        problem = whole_record_problem("custom_payload", Template.parse(shape.custom_payload))
        if problem:
            raise SettingsError(f"{where}: {problem} (body_format {shape.body_format})")
    if shape.static_fields and isinstance(template, TextPayload):
        raise SettingsError(
            f"{where}: 'static_fields' cannot be added to a CSV 'custom_payload' line; "
            "write the constants into the template"
        )
    if shape.static_fields and isinstance(template, NdjsonPayload) and template.lines > 1:
        raise SettingsError(
            f"{where}: 'static_fields' cannot be added to an ndjson 'custom_payload' of "
            f"{template.lines} lines (which line would take them?); write the constants "
            "into the template"
        )
    in_object = shape.nested_attribute is None  # else they sit beside the records
    not_object = isinstance(template, JsonPayload | NdjsonPayload) and not template.is_object
    if shape.static_fields and in_object and not_object:
        nesting = "" if shape.body_format == "ndjson" else ", or turn on send_as_nested_attribute"
        raise SettingsError(
            f"{where}: 'static_fields' go into the body object, but 'custom_payload' is "
            f"not a JSON object; make it one{nesting}"
        )
    problem = shape_problem(shape, single=values["request_mode"] == "single")
    problem = problem or content_type_problem(shape.body_format, values.get("headers") or {})
    if problem:
        raise SettingsError(f"{where}: {problem}")
    return shape


def check_all(config: Mapping[str, Any]) -> list[str]:
    """Resolve the top level and every `streams` entry once at start-up.

    Returns the warnings to log once: settings that are valid but will do nothing.
    """
    resolve(config, "")
    streams = config.get("streams") or {}
    saving = any(merged(config, stream)["save_responses"] for stream in streams)
    top = merged(config, "")
    warnings = start_warnings(top, config, saving_elsewhere=saving)
    deleting = any(merged(config, stream)["hard_delete"] for stream in streams)
    warnings += unused_delete_settings(top, config, deleting_elsewhere=deleting)
    for stream in streams:
        resolve(config, stream)
        values, own = merged(config, stream), streams[stream] or {}
        found = start_warnings(values, own) + unused_delete_settings(values, own)
        warnings += [f"stream '{stream}': {warning}" for warning in found]
    return warnings
