"""The settings schema: what `--about` shows and the SDK checks at start-up.

Request settings may be given at the top level and again under `streams.<name>`.
"""

from __future__ import annotations

from typing import Any

from target_restapi.auth.settings import auth_properties
from target_restapi.output.responses import FORMATS as RESPONSE_FORMATS
from target_restapi.sdk_seam import th
from target_restapi.shaping.mappings import FIELD_TYPES
from target_restapi.shaping.shapers import BODY_FORMATS
from target_restapi.tunnel.settings import SETTING as SSH_TUNNEL

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
REQUEST_MODES = ("single", "batch", "one")
MAX_SLEEP_MS = 60_000


def _request_properties(*, top_level: bool) -> list[th.Property]:
    """Settings that may be given at the top level and again per stream.

    Per stream there are no defaults: the SDK fills declared defaults into the config,
    and a filled-in default would override the top-level value.
    """
    properties: list[th.Property[Any]] = [
        th.Property(
            "url",
            th.StringType,
            required=top_level,
            description="Endpoint URL; `#{field}` placeholders are filled from each record "
            "and percent-encoded.",
        ),
        th.Property(
            "allow_record_hosts",
            th.BooleanType,
            default=False,
            description="Let `#{field}` placeholders fill the scheme, host, port or user-info "
            "of `url`, so records choose where requests and credentials go (a warning is "
            "logged); refused with `ssh_tunnel`.",
        ),
        th.Property(
            "method",
            th.StringType(allowed_values=list(METHODS)),
            default="POST",
            description="HTTP method. GET requests carry no body.",
        ),
        th.Property(
            "headers",
            th.ObjectType(additional_properties=th.StringType),
            description="Request headers, name to value; values may hold `#{field}`.",
        ),
        *auth_properties(),
        th.Property(
            "request_mode",
            th.StringType(allowed_values=list(REQUEST_MODES)),
            default="single",
            description="`single`: one request per record; `batch`: `batch_size` records "
            "per request; `one`: all records of a stream in one request.",
        ),
        th.Property(
            "batch_size",
            th.IntegerType(minimum=1),
            default=100,
            description="Records per request in `batch` mode.",
        ),
        th.Property(
            "batch_max_bytes",
            th.IntegerType(minimum=1),
            description="Largest request body in bytes, before compression, in `batch` and "
            "`one` modes: a batch is cut before the record that would pass it. A record "
            "too large alone is a record error.",
        ),
        th.Property(
            "batch_max_age_seconds",
            th.NumberType(exclusive_minimum=0),
            default=60,
            description="A partial batch older than this is sent even when the tap writes "
            "nothing more, so the STATE after its records is printed in bounded time.",
        ),
        th.Property(
            "max_open_batches",
            th.IntegerType(minimum=1),
            default=1000,
            description="Partial batches (one per rendered URL and headers) kept in memory "
            "per stream; past it the oldest is sent.",
        ),
        th.Property(
            "request_sleep_interval_ms",
            th.IntegerType(minimum=0, maximum=MAX_SLEEP_MS),
            default=0,
            description="Pause between two requests, in milliseconds (0 to 60000).",
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType(exclusive_minimum=0),
            description="Start at most this many requests a second (retries included), "
            "evenly spaced, however many are in flight; the top-level rate is shared by the "
            "streams that take it.",
        ),
        th.Property(
            "rate_limit_redis_url",
            th.StringType,
            secret=True,
            description="`redis://` or `rediss://` URL: `max_requests_per_second` becomes one "
            "budget shared through Redis by every process that uses the same `rate_limit_key` "
            "(see docs/many-pipelines.md).",
        ),
        th.Property(
            "rate_limit_key",
            th.StringType,
            description="Name of the shared budget in Redis; by default "
            "`target-restapi:<scheme>://<host>:<port>` of `url`.",
        ),
        th.Property(
            "fail_on_error",
            th.BooleanType,
            default=True,
            description="Stop the run on a 4xx/5xx answer; when false, log and count it and go on.",
        ),
        th.Property(
            "body_format",
            th.StringType(allowed_values=list(BODY_FORMATS)),
            default="json",
            description="`json`, `ndjson` (a JSON document per line, application/x-ndjson), "
            "`csv`, `form_data` (multipart) or `urlencoded`; sets the Content-Type unless "
            "`headers` gives one (for form_data only multipart/form-data, which gets the "
            "body's boundary).",
        ),
        th.Property(
            "custom_payload",
            th.StringType,
            description="Body template replacing the automatic mapping; `#{field}` is filled "
            'from the record (in JSON, a string that is exactly `"#{field}"` keeps its type, '
            '`"#{*}"` is the whole record); for ndjson, one JSON document per line.',
        ),
        th.Property(
            "send_as_nested_attribute",
            th.BooleanType,
            default=False,
            description='Wrap the records in an object: `{"<nested_attribute_name>": [...]}`.',
        ),
        th.Property(
            "nested_attribute_name",
            th.StringType,
            default="records",
            description="Name of the attribute that holds the records (also the form key "
            "prefix in batches: `records[0][name]`).",
        ),
        th.Property(
            "static_fields",
            th.ObjectType(additional_properties=True),
            description="JSON constants added to every body; a record field of the same name wins.",
        ),
        th.Property(
            "field_mappings",
            th.ArrayType(
                th.ObjectType(
                    th.Property("field_name", th.StringType, required=True),
                    th.Property("column_name", th.StringType, required=True),
                    th.Property("field_type", th.StringType(allowed_values=list(FIELD_TYPES))),
                )
            ),
            description="Send only these columns (`column_name`, dotted paths allowed) under "
            "`field_name`; `field_type` is checked against the SCHEMA.",
        ),
        th.Property(
            "set_field_name",
            th.BooleanType,
            default=True,
            description="Put field names in CSV (header row) and form bodies; when false, "
            "form keys are field positions.",
        ),
        th.Property(
            "csv_delimiter",
            th.StringType,
            default=",",
            description="The one character between CSV fields (`,`, `;`, `|`, a tab, ...), "
            "in the automatic CSV body and the fields of a CSV `custom_payload`.",
        ),
        th.Property(
            "timeout_seconds",
            # singer_sdk annotates bounds as int; JSON Schema and its runtime take a float
            th.NumberType(minimum=0.001),  # type: ignore[arg-type]
            default=60,
            description="Time limit for a whole request: connecting, sending it and reading "
            "the answer; a request past it counts as a timeout (retried).",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType(minimum=1, maximum=256),
            default=1,
            description="Requests in flight at once. Records with the same rendered URL are "
            "never in flight together; 1 keeps input order.",
        ),
        th.Property(
            "compression",
            th.StringType(allowed_values=["none", "gzip"]),
            default="none",
            description="`gzip` compresses request bodies and sets Content-Encoding.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=5,
            description="Retries after a failed attempt (exponential backoff with jitter).",
        ),
        th.Property(
            "max_backoff_seconds",
            th.NumberType(minimum=0),
            default=60,
            description="Longest wait between two attempts, Retry-After included.",
        ),
        th.Property(
            "retry_on_status",
            th.ArrayType(th.IntegerType(minimum=100, maximum=599)),
            description="Answer statuses that are retried (default 408, 429, 500, 502, 503, "
            "504); connection errors and timeouts are always retried.",
        ),
        th.Property(
            "success_condition",
            th.StringType,
            description="JMESPath expression on the JSON body of a 2xx answer (e.g. `ok`); "
            "false or null makes the request failed (see docs/answers.md).",
        ),
        th.Property(
            "retry_on_condition",
            th.BooleanType,
            default=False,
            description="Retry a 2xx answer that fails `success_condition` or `item_results` "
            "like a 503, instead of failing at once.",
        ),
        th.Property(
            "item_results",
            th.StringType,
            description="JMESPath expression giving the answer's list of per-record results, "
            "one per record in order (e.g. `items`); another length fails the request.",
        ),
        th.Property(
            "item_success_condition",
            th.StringType,
            description="JMESPath expression on each `item_results` entry (e.g. "
            "``status < `300` ``); a record whose entry gives false or null failed.",
        ),
        th.Property(
            "response_fields",
            th.ObjectType(additional_properties=th.StringType),
            description="Output name to JMESPath expression, picked per record from its "
            "answer (or its `item_results` entry); with `save_responses` the response file "
            "has a line per record.",
        ),
        th.Property(
            "error_file_path",
            th.StringType,
            description="With fail_on_error false: JSON-lines file that receives each failed "
            "record (stream, record, method, URL, status, answer, attempts, time).",
        ),
        th.Property(
            "idempotency_key_header",
            th.StringType,
            description="Header (e.g. `Idempotency-Key`) carrying a key derived from stream, "
            "key properties and payload: the same across retries and reruns.",
        ),
        th.Property(
            "save_responses",
            th.BooleanType,
            default=False,
            description="Write one entry per request (status, headers, body, record keys) "
            "to a file per stream and run in `response_file_path`.",
        ),
        th.Property(
            "response_file_path",
            th.StringType,
            description="Folder for response files: a local path or an fsspec URL "
            "(`file://`, `memory://`, `s3://` with `target-restapi[s3]`, ...).",
        ),
        th.Property(
            "response_file_format",
            th.StringType(allowed_values=list(RESPONSE_FORMATS)),
            default="jsonl",
            description="`jsonl` (a line per request), `csv`, or `json` (one array per file).",
        ),
        th.Property(
            "hard_delete",
            th.BooleanType,
            default=False,
            description="Send a record whose `_sdc_deleted_at` is set as one delete request "
            "(`delete_url`, `delete_method`) instead of a record; when false it is sent as a "
            "record, the field included (soft delete). See docs/deletes.md.",
        ),
        th.Property(
            "delete_url",
            th.StringType,
            description="URL of delete requests, `#{field}` filled from the deleted record "
            "(e.g. `https://api.example.com/users/#{id}`); default: `url`.",
        ),
        th.Property(
            "delete_method",
            th.StringType(allowed_values=list(METHODS)),
            default="DELETE",
            description="HTTP method of delete requests.",
        ),
        th.Property(
            "delete_payload",
            th.StringType,
            description="Body template of delete requests, written like `custom_payload`; "
            "without it a delete request has no body.",
        ),
        th.Property(
            "verify_tls",
            th.BooleanType,
            default=True,
            description="Verify TLS certificates. Turn off only for testing: a warning is "
            "logged at start.",
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            description="Path of a CA bundle (PEM) to verify the server's certificate with.",
        ),
    ]
    if not top_level:
        for prop in properties:
            prop.default = None
    return properties


CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    *_request_properties(top_level=True),
    th.Property(
        "streams",
        th.ObjectType(additional_properties=th.ObjectType(*_request_properties(top_level=False))),
        description='Per-stream overrides: `{"<stream>": {<any setting above>}}`, '
        "merged over the top-level settings.",
    ),
    SSH_TUNNEL,
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Shape every request but send none: log the first 10 of each stream "
        "(secrets masked) and how many would have been sent. No STATE is emitted.",
    ),
    th.Property(
        "progress_interval_seconds",
        th.NumberType(minimum=1),
        default=30,
        description="Seconds between progress lines in the log during a run.",
    ),
).to_dict()

DEFAULTS: dict[str, Any] = {
    prop.name: prop.default
    for prop in _request_properties(top_level=True)
    if prop.default is not None
}
