"""The target: settings, SDK wiring, signals, and ownership of STATE emission.

Records of streams without stream maps take a direct path to their sink (validate,
shape, send) that skips the SDK's per-record work; mapped streams use the SDK's path.
STATE lines are written by the StateTracker once every earlier record was delivered.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any, ClassVar

import click
import urllib3
from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import (
    ADD_RECORD_METADATA_CONFIG,
    BATCH_CONFIG,
    TARGET_VALIDATE_RECORDS_CONFIG,
    PluginCapabilities,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import Sink

from target_restapi.auth.credentials import Credentials
from target_restapi.delivery.deadline import STOP_GRACE_SECONDS
from target_restapi.delivery.dispatch import Workers
from target_restapi.delivery.pacing import RateLimit
from target_restapi.delivery.shared_rate import SharedRateLimit, shared_budget
from target_restapi.delivery.transport import Connections
from target_restapi.errors import SettingsError, Stopped, TargetError
from target_restapi.output.error_file import ErrorFile
from target_restapi.output.progress import Progress, Tally
from target_restapi.output.redact import Redactor, redact_url
from target_restapi.output.responses import OpenFiles, ResponseFile
from target_restapi.output.state import StateTracker
from target_restapi.settings.messages import one_line, schema_problems
from target_restapi.settings.names import (
    unknown_settings,
    unused_sdk_settings,
    unused_stream_entries,
)
from target_restapi.settings.schema import CONFIG_SCHEMA
from target_restapi.settings.secrets import secrets_in, stream_keys
from target_restapi.settings.sources import ConfigArgs, ConfigInput
from target_restapi.settings.sources import load as load_config
from target_restapi.settings.streams import (
    StreamSettings,
    check_all,
    merged,
    renamed_entry,
    tls_verify,
)
from target_restapi.singer_input.batch_files import batch_lines
from target_restapi.singer_input.reader import INPUT_ERRORS, SingerLineReader
from target_restapi.singer_input.validation import decode_record
from target_restapi.sinks import RestSink


class TargetRestApi(Target):
    """Singer target that delivers records to any HTTP endpoint."""

    name = "target-restapi"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = RestSink
    message_reader_class = SingerLineReader
    capabilities: ClassVar[list] = [*Target.capabilities, PluginCapabilities.BATCH]

    def __init__(
        self, *, config: ConfigInput = None, parse_env_config: bool = False, **kwargs: Any
    ) -> None:
        # Settings are loaded here, not by the SDK (see config_sources), then validated by it.
        self.append_builtin_config(self.config_jsonschema)
        environ = os.environ if parse_env_config else None
        config = load_config(config, self.config_jsonschema, self._env_var_prefix, environ)
        super().__init__(config=config, parse_env_config=False, **kwargs)
        # Sinks send as records arrive, on the reading thread; nothing is drained in parallel.
        self.max_parallelism = 1
        self.redactor.add(secrets_in(self.config))
        self.redactor.install()
        for warning in check_all(self.config):
            self.logger.warning("%s", warning)
        self.reader: SingerLineReader = self.message_reader  # type: ignore[assignment]
        self.stop = self.reader.stop
        self.reader.before_failing = self._before_failing
        self.reader.on_record = self._on_record
        self.reader.send_due = self._send_due
        self.dry_run = bool(self.config.get("dry_run"))
        self.tracker = StateTracker(_discard if self.dry_run else self._write_state_line)
        self._tallies: dict[str, Tally] = {}
        self.progress = Progress(
            lambda: dict(self._tallies),
            self.logger,
            float(self.config.get("progress_interval_seconds") or 30),
        )
        self._direct: dict[str, RestSink] = {}
        self._error_files: dict[str, ErrorFile] = {}
        self._response_files: dict[str, ResponseFile] = {}
        self._open_files = OpenFiles()  # response files holding a descriptor: bounded
        self._rate_limits: dict[object, RateLimit | SharedRateLimit | None] = {}
        for stream in stream_keys(self.config):
            self.rate_limit(stream)  # an incomplete budget or an unusable Redis stops here
        unverified = [s for s in stream_keys(self.config) if tls_verify(self.config, s) is False]
        if unverified:
            places = [
                f"stream '{s}'" if s else "the top level (and streams inheriting it)"
                for s in unverified
            ]
            self.logger.warning(
                "verify_tls is false: TLS certificates are NOT verified for %s", ", ".join(places)
            )
            # Said once here; urllib3 would repeat it for every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.tunnels = None
        if (self.config.get("ssh_tunnel") or {}).get("enable"):
            # paramiko and sshtunnel are slow to import: only runs with a tunnel pay for it.
            from target_restapi.tunnel.ssh import open_tunnels

            self.tunnels = open_tunnels(self.config, self.logger)  # bad settings fail here
        self.credentials = Credentials(self.redactor, self.tunnels)
        # Connections and threads are the run's, shared by every stream (docs/operations.md).
        streams = stream_keys(self.config)
        most = max(int(merged(self.config, s)["max_concurrency"]) for s in streams)
        # A connection for each sender thread, and for the reading thread (max_concurrency 1).
        self.connections = Connections(self.stop, tunnels=self.tunnels, pool_size=most + 1)
        self.workers = Workers(most, "send")
        self.progress.start()

    redactor = Redactor()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check names and values against the final schema, all told in one line.

        Replaces the SDK's check, which logs a line per error without a fix. The secrets
        are learnt first, in case a setting's value is quoted.
        """
        try:
            self.redactor = Redactor(secrets_in(self._config))
        except (AttributeError, TypeError, ValueError):  # malformed: the check will say so
            self.redactor = Redactor()
        self.redactor.install()
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        problems = unknown_settings(self._config, schema) + schema_problems(self._config, schema)
        for warning in unused_sdk_settings(self._config, schema):
            self.logger.warning("%s", warning)
        if problems and raise_errors:
            raise SettingsError(one_line(problems))
        return problems

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:  # type: ignore[override]
        """Run, turning errors the user can act on into one clear line and exit code 1."""
        try:
            super().invoke(**kwargs)
        except (TargetError, *INPUT_ERRORS) as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)
        except ConfigValidationError:
            raise  # the SDK's command logs each problem, then exits 1
        except Exception as exc:  # nobody planned for it: still one line, never a traceback
            cls.logger.error("unexpected %s: %s", type(exc).__name__, exc)
            sys.exit(1)

    @classmethod
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> ConfigArgs:
        """Keep `--config` as given: files are read in `__init__`, within `invoke`.

        There a file that cannot be read becomes one line, not a traceback.
        """
        return ConfigArgs.from_cli(value)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """Offer only the SDK settings that mean something here.

        No load_method or batch_size_rows: `request_mode` and `batch_size` decide sending.
        """
        for builtin in (ADD_RECORD_METADATA_CONFIG, BATCH_CONFIG, TARGET_VALIDATE_RECORDS_CONFIG):
            for name, schema in builtin["properties"].items():
                config_jsonschema["properties"].setdefault(name, schema)
        super(Target, cls).append_builtin_config(config_jsonschema)

    def add_sink(
        self, stream_name: str, schema: dict, key_properties: Sequence[str] | None = None
    ) -> Sink:
        """A stream that stream_maps renamed or copied takes its source's `streams` entry."""
        self._inherit_source_entry(stream_name)
        return super().add_sink(stream_name, schema, key_properties)

    def _inherit_source_entry(self, stream: str) -> None:
        """Lay `stream`'s own `streams` entry over its stream_maps source's (idempotent).

        Also run for every SCHEMA: a second source with an entry is refused there.
        """
        sources = [
            source
            for source, maps in self.mapper.stream_maps.items()
            if source != stream and any(m.stream_alias == stream for m in maps)
        ]
        entry = renamed_entry(self._config.get("streams") or {}, stream, sources)
        if entry is not None:
            self._config.setdefault("streams", {})[stream] = entry

    def tally_for(self, stream: str) -> Tally:
        """The counts of a stream, kept across its sinks when its SCHEMA changes."""
        return self._tallies.setdefault(stream, Tally())

    def response_file(self, stream: str, settings: StreamSettings) -> ResponseFile:
        """The response file of a stream for this run, kept when its SCHEMA changes."""
        if stream not in self._response_files:
            try:
                self._response_files[stream] = ResponseFile(
                    settings.response_file_path or "",
                    stream,
                    settings.response_file_format,
                    self.redactor,
                    self._open_files,
                    tuple(name for name, _ in settings.answers.fields),
                )
            except OSError as exc:
                raise SettingsError(
                    f"stream '{stream}': setting 'response_file_path': cannot create or open "
                    f"a file in {redact_url(settings.response_file_path or '')}: {exc}"
                ) from None
        return self._response_files[stream]

    def rate_limit(self, stream: str) -> RateLimit | SharedRateLimit | None:
        """The request rate a stream keeps, also when its SCHEMA changes.

        The top-level max_requests_per_second is one budget for every stream that takes it
        (an API's limit is the client's); a stream that sets its own has its own. With
        rate_limit_redis_url the budget is kept in Redis, shared with other processes.
        """
        own = (self.config.get("streams") or {}).get(stream) or {}
        separate = own.get("max_requests_per_second") is not None
        values = merged(self.config, stream)
        where = f"stream '{stream}'" if own else "settings"
        suffix = stream if separate and own.get("rate_limit_key") is None else None
        budget = shared_budget(values, where, stream=suffix)
        key = budget or (stream if separate else "")
        if key not in self._rate_limits:
            if budget is None:
                self._rate_limits[key] = RateLimit.of(values.get("max_requests_per_second"))
            else:  # a dry run sends nothing, so it asks no Redis
                self._rate_limits[key] = None if self.dry_run else SharedRateLimit(budget, where)
        return self._rate_limits[key]

    def error_file(self, path: str) -> ErrorFile:
        """The error file at `path`, shared by every stream that names it."""
        if path not in self._error_files:
            self._error_files[path] = ErrorFile(path, self.redactor)
        return self._error_files[path]

    # Messages

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        # A schema change parks the old sink; send its records now to keep input order.
        for sink in self._sinks_to_clear:
            sink.clean_up()
        self._sinks_to_clear = []
        stream = message_dict["stream"]
        maps = self.mapper.stream_maps[stream]
        for stream_map in maps:
            self._inherit_source_entry(stream_map.stream_alias)
        direct = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and not self.config.get("add_record_metadata")
        )
        if direct:
            self._direct[stream] = self._sinks_active[stream]  # type: ignore[assignment]
        else:
            self._direct.pop(stream, None)

    def _on_record(self, stream: str, raw: bytes) -> None:
        """A RECORD straight from the reader: the direct path, or the SDK's for mapped streams."""
        sink = self._direct.get(stream)
        if sink is None:
            self._process_record_message({"type": "RECORD", "stream": stream, "raw": raw})
        else:
            sink.accept(raw)

    def _process_batch_message(self, message_dict: dict) -> None:
        """The records of a BATCH manifest's files, one by one, as if they were RECORDs.

        So they are validated, shaped, counted and sequenced alike, and a later STATE
        waits for them. A file that cannot be read or decoded is bad input.
        """
        records = batch_lines(message_dict, self.config.get("batch_config"))
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            self._assert_sink_exists(stream)
        for where, raw in records:
            if self.stop.is_set():
                return
            try:
                self._on_record(stream, raw)
            except INPUT_ERRORS as exc:
                exc.args = (f"{where}: {exc.args[0]}", *exc.args[1:])
                raise

    def _process_record_message(self, message_dict: dict) -> None:
        message_dict["record"] = decode_record(message_dict["raw"])
        super()._process_record_message(message_dict)

    def _process_state_message(self, message_dict: dict) -> None:
        """Held until the records before it are delivered: it cuts no batch.

        Batches are cut by size, bytes, age and the end of input; `_send_due` bounds the wait.
        """
        self.tracker.state(message_dict["raw_value"])

    def _send_due(self) -> float | None:
        """Send the batches past batch_max_age_seconds; seconds until the next one is due.

        Called by the reader on its own thread: between lines, and while it waits for input.
        """
        now = time.monotonic()
        dues = [due for sink in self._sinks() if (due := sink.send_due(now)) is not None]
        return max(0.0, min(dues) - now) if dues else None

    def _handle_max_record_age(self) -> None:
        """Sinks send on their own schedule; the SDK's periodic drain is not needed."""

    def process_endofpipe(self) -> None:
        """Send everything still pending, unless a signal asked to stop sending.

        A signal may also come while the last requests are sent: it ends them the same way.
        """
        with contextlib.suppress(Stopped):  # what was not sent is counted: reported below
            self._wind_down(send=self.reader.stopped_by is None)
        if self.reader.stopped_by is not None:
            self._report_stop(self.reader.stopped_by)
            return
        for warning in unused_stream_entries(self.config, self._tallies):
            self.logger.warning("%s", warning)  # all input was read: a misspelt stream name

    def _before_failing(self, *, send: bool) -> None:
        """The run is failing: close files and connections, first delivering (`send`).

        `send` is true for bad input: the good records read before it are delivered.
        A second error on the way is logged, not raised.
        """
        try:
            self._wind_down(send=send)
        except TargetError as exc:
            self.logger.error("%s", exc)

    def _wind_down(self, *, send: bool) -> None:
        # A SCHEMA change that failed leaves the stream's old sink parked: it counts too.
        sinks = [*self._sinks_to_clear, *self._sinks()]
        try:
            if send:
                for sink in sinks:
                    sink.finish()
        finally:
            for sink in sinks:
                sink.close()
            for file in [*self._error_files.values(), *self._response_files.values()]:
                file.close()
            self.workers.close()
            self.connections.close()
            if self.tunnels is not None:
                self.tunnels.close()
            self.credentials.close()
            self.progress.summary()

    def _report_stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        left = sum(sink.undelivered for sink in self._sinks())
        if left:
            raise TargetError(f"stopped by {name}: {left} records were not delivered{_RERUN}")
        self.logger.info("stopped by %s: every record received was delivered", name)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: stop reading, give requests in flight a moment, send no more.

        A second signal exits at once. The SDK's own handler drains and exits 0 even when
        sending fails; not used.
        """
        name = signal.Signals(signum).name
        if self.reader.stopped_by is not None:
            # Written straight to stderr: the interrupted code may hold a logging lock.
            os.write(2, f"received {name} again: exiting at once{_RERUN}\n".encode())
            os._exit(128 + signum)
        self.logger.info(
            "received %s: stopping; requests in flight get %g s to finish, "
            "a second signal exits at once",
            name,
            STOP_GRACE_SECONDS,
        )
        self.reader.interrupt(signum)

    def _sinks(self) -> list[RestSink]:
        return list(self._sinks_active.values())  # type: ignore[arg-type]

    # STATE output

    def _write_state_message(self, state: dict) -> None:
        """The SDK's STATE writer is unused: StateTracker decides when STATE is safe."""

    @staticmethod
    def _write_state_line(value: bytes) -> None:
        sys.stdout.write(value.decode() + "\n")
        sys.stdout.flush()


_RERUN = "; every STATE emitted covers only delivered records, so rerun the tap from the last one"


def _discard(_state: bytes) -> None:
    """Dry run: nothing was delivered, so no STATE may be emitted."""


if __name__ == "__main__":
    TargetRestApi.cli()
