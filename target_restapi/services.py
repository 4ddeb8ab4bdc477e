"""What the run shares with every sink, built once by the target and handed to each sink.

A sink reads nothing off the target: all it needs of the run (STATE tracker, stop flag,
connections, threads, credentials, files, counts, rate budgets) is in `Services`. What is
kept per stream (counts, response file, rate budget) outlives a sink whose SCHEMA changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from target_restapi.auth.credentials import Credentials
from target_restapi.delivery.dispatch import Workers
from target_restapi.delivery.pacing import RateLimit
from target_restapi.delivery.shared_rate import SharedRateLimit, shared_budget
from target_restapi.delivery.transport import Connections
from target_restapi.errors import SettingsError
from target_restapi.output.error_file import ErrorFile
from target_restapi.output.notices import Notices
from target_restapi.output.progress import Tally
from target_restapi.output.redact import Redactor, redact_url
from target_restapi.output.responses import OpenFiles, ResponseFile
from target_restapi.output.state import StateTracker
from target_restapi.settings.streams import StreamSettings, merged


class RateLimits:
    """The request rate each stream keeps, also when its SCHEMA changes.

    The top-level max_requests_per_second is one budget for every stream that takes it
    (an API's limit is the client's); a stream that sets its own has its own. With
    rate_limit_redis_url the budget is kept in Redis, shared with other processes.
    """

    def __init__(self, config: Mapping[str, Any], *, dry_run: bool) -> None:
        self._config = config
        self._dry_run = dry_run
        self._limits: dict[object, RateLimit | SharedRateLimit | None] = {}

    def of(self, stream: str) -> RateLimit | SharedRateLimit | None:
        own = (self._config.get("streams") or {}).get(stream) or {}
        separate = own.get("max_requests_per_second") is not None
        values = merged(self._config, stream)
        where = f"stream '{stream}'" if own else "settings"
        suffix = stream if separate and own.get("rate_limit_key") is None else None
        budget = shared_budget(values, where, stream=suffix)
        key = budget or (stream if separate else "")
        if key not in self._limits:
            if budget is None:
                self._limits[key] = RateLimit.of(values.get("max_requests_per_second"))
            else:  # a dry run sends nothing, so it asks no Redis
                self._limits[key] = None if self._dry_run else SharedRateLimit(budget, where)
        return self._limits[key]


class OutputFiles:
    """The run's error files (one per path, shared by streams) and response files."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._errors: dict[str, ErrorFile] = {}
        self._responses: dict[str, ResponseFile] = {}
        self._open = OpenFiles()  # response files holding a descriptor: bounded

    def error_file(self, path: str) -> ErrorFile:
        """The error file at `path`, shared by every stream that names it."""
        if path not in self._errors:
            self._errors[path] = ErrorFile(path, self._redactor)
        return self._errors[path]

    def response_file(self, stream: str, settings: StreamSettings) -> ResponseFile:
        """The response file of a stream for this run, kept when its SCHEMA changes."""
        if stream not in self._responses:
            try:
                self._responses[stream] = ResponseFile(
                    settings.response_file_path or "",
                    stream,
                    settings.response_file_format,
                    self._redactor,
                    self._open,
                    tuple(name for name, _ in settings.answers.fields),
                )
            except OSError as exc:
                raise SettingsError(
                    f"stream '{stream}': setting 'response_file_path': cannot create or open "
                    f"a file in {redact_url(settings.response_file_path or '')}: {exc}"
                ) from None
        return self._responses[stream]

    def close(self) -> None:
        files: list[ErrorFile | ResponseFile] = [*self._errors.values(), *self._responses.values()]
        for file in files:
            file.close()


@dataclass(frozen=True)
class Services:
    """The run's shared parts, as a sink needs them."""

    config: Mapping[str, Any]
    dry_run: bool
    redactor: Redactor
    stop: threading.Event
    line_number: Callable[[], int]  # the input line being read, for record errors
    tracker: StateTracker
    credentials: Credentials
    connections: Connections
    workers: Workers
    rate_limits: RateLimits
    files: OutputFiles
    notices: Notices  # warnings said once per run (per stream, per kind)
    tallies: dict[str, Tally] = field(default_factory=dict)

    def tally_for(self, stream: str) -> Tally:
        """The counts of a stream, kept across its sinks when its SCHEMA changes."""
        return self.tallies.setdefault(stream, Tally())
