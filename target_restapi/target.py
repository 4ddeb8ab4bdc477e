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
from typing import Any, ClassVar

import urllib3

from target_restapi.auth.credentials import Credentials
from target_restapi.delivery.deadline import STOP_GRACE_SECONDS
from target_restapi.delivery.dispatch import Workers
from target_restapi.delivery.transport import Connections
from target_restapi.errors import SettingsError, Stopped, TargetError
from target_restapi.output.notices import Notices, activate_version_ignored
from target_restapi.output.progress import Progress, Tally
from target_restapi.output.redact import Redactor
from target_restapi.output.state import StateTracker
from target_restapi.sdk_seam import (
    ConfigValidationError,
    PluginCapabilities,
    SameRecordTransform,
    SeamTarget,
    Sink,
    TargetCapabilities,
)
from target_restapi.services import OutputFiles, RateLimits, Services
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
from target_restapi.settings.streams import check_all, merged, renamed_entry, tls_verify
from target_restapi.singer_input.batch_files import batch_lines
from target_restapi.singer_input.reader import INPUT_ERRORS, SingerLineReader
from target_restapi.singer_input.validation import decode_record
from target_restapi.sinks import RestSink


class TargetRestApi(SeamTarget):
    """Singer target that delivers records to any HTTP endpoint."""

    name = "target-restapi"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = RestSink
    message_reader_class = SingerLineReader
    capabilities: ClassVar[list] = [
        *SeamTarget.capabilities,
        PluginCapabilities.BATCH,
        TargetCapabilities.HARD_DELETE,  # the hard_delete setting: docs/deletes.md
    ]

    def __init__(
        self, *, config: ConfigInput = None, parse_env_config: bool = False, **kwargs: Any
    ) -> None:
        # Settings are loaded here, not by the SDK (see config_sources), then validated by it.
        self.append_builtin_config(self.config_jsonschema)
        environ = os.environ if parse_env_config else None
        config = load_config(config, self.config_jsonschema, self.env_var_prefix(), environ)
        super().__init__(config=config, parse_env_config=False, **kwargs)
        # Sinks send as records arrive, on the reading thread; nothing is drained in parallel.
        self.max_parallelism = 1
        self.redactor.add(secrets_in(self.config))
        self.redactor.install()
        for warning in check_all(self.config):
            self.logger.warning("%s", warning)
        # The SDK types it as its base reader; message_reader_class makes it ours.
        self.reader: SingerLineReader = self.message_reader  # type: ignore[assignment]
        self.stop = self.reader.stop
        self.reader.before_failing = self._before_failing
        self.reader.on_record = self._on_record
        self.reader.send_due = self._send_due
        dry_run = bool(self.config.get("dry_run"))
        tracker = StateTracker(_discard if dry_run else self._write_state_line)
        tallies: dict[str, Tally] = {}
        self.progress = Progress(
            lambda: dict(tallies),
            self.logger,
            float(self.config.get("progress_interval_seconds") or 30),
        )
        self._direct: dict[str, RestSink] = {}
        rate_limits = RateLimits(self.config, dry_run=dry_run)
        for stream in stream_keys(self.config):
            rate_limits.of(stream)  # an incomplete budget or an unusable Redis stops here
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
        # Connections and threads are the run's, shared by every stream (docs/operations.md).
        streams = stream_keys(self.config)
        most = max(int(merged(self.config, s)["max_concurrency"]) for s in streams)
        self.services = Services(
            config=self.config,
            dry_run=dry_run,
            redactor=self.redactor,
            stop=self.stop,
            line_number=lambda: self.reader.line_number,
            tracker=tracker,
            credentials=Credentials(self.redactor, self.tunnels),
            # A connection for each sender thread, and for the reading thread.
            connections=Connections(self.stop, tunnels=self.tunnels, pool_size=most + 1),
            workers=Workers(most, "send"),
            rate_limits=rate_limits,
            files=OutputFiles(self.redactor),
            tallies=tallies,
            notices=Notices(self.logger),
        )
        self.progress.start()

    redactor = Redactor()

    def check_settings(self, config: dict, *, raise_errors: bool) -> list[str]:
        """Check names and values against the final schema, all told in one line.

        Replaces the SDK's check, which logs a line per error without a fix. The secrets
        are learnt first, in case a setting's value is quoted.
        """
        try:
            self.redactor = Redactor(secrets_in(config))
        except (AttributeError, TypeError, ValueError):  # malformed: the check will say so
            self.redactor = Redactor()
        self.redactor.install()
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        problems = unknown_settings(config, schema) + schema_problems(config, schema)
        for warning in unused_sdk_settings(config, schema):
            self.logger.warning("%s", warning)
        if problems and raise_errors:
            raise SettingsError(one_line(problems))
        return problems

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:
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
    def config_from_cli(cls, value: tuple[str, ...]) -> ConfigArgs:
        """Keep `--config` as given: files are read in `__init__`, within `invoke`.

        There a file that cannot be read becomes one line, not a traceback.
        """
        return ConfigArgs.from_cli(value)

    # Final in the SDK; overridden so that a mapped stream inherits its source's entry.
    def add_sink(  # type: ignore[misc]
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
        config = self.settings_dict
        entry = renamed_entry(config.get("streams") or {}, stream, sources)
        if entry is not None:
            config.setdefault("streams", {})[stream] = entry

    # Messages

    def schema_arrived(self, stream: str) -> None:
        """Pick the stream's path: direct to its sink, or the SDK's for mapped streams."""
        # A schema change parks the old sink; send its records now to keep input order.
        for sink in self.unpark_sinks():
            sink.clean_up()
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
            # The SDK types sinks as Sink; every sink of this target is a RestSink.
            active: RestSink = self.active_sink(stream)  # type: ignore[assignment]
            self._direct[stream] = active
            self.reader.direct[stream] = active.accept
            if active.lane is not None:
                self.reader.lanes[stream] = active.lane
            else:
                self.reader.lanes.pop(stream, None)
        else:
            self._direct.pop(stream, None)
            self.reader.direct.pop(stream, None)
            self.reader.lanes.pop(stream, None)

    def _on_record(self, stream: str, raw: bytes) -> None:
        """A RECORD straight from the reader: the direct path, or the SDK's for mapped streams."""
        sink = self._direct.get(stream)
        if sink is None:
            self.record_arrived({"type": "RECORD", "stream": stream, "raw": raw})
        else:
            sink.accept(raw)

    def batch_arrived(self, message_dict: dict) -> None:
        """The records of a BATCH manifest's files, one by one, as if they were RECORDs.

        So they are validated, shaped, counted and sequenced alike, and a later STATE
        waits for them. A file that cannot be read or decoded is bad input.
        """
        records = batch_lines(message_dict, self.config.get("batch_config"))
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            self.require_sink(stream)
        for where, raw in records:
            if self.stop.is_set():
                return
            try:
                self._on_record(stream, raw)
            except INPUT_ERRORS as exc:
                exc.args = (f"{where}: {exc.args[0]}", *exc.args[1:])
                raise

    def record_arrived(self, message_dict: dict) -> None:
        """A RECORD of a mapped stream: decoded, then through the SDK's stream maps."""
        message_dict["record"] = decode_record(message_dict["raw"], message_dict["stream"])
        self.map_record(message_dict)

    def activate_version_arrived(self, stream: str | None) -> None:
        """Ignored, said once per stream: an HTTP endpoint has no table version to switch."""
        self.services.notices.warn(("ACTIVATE_VERSION", stream), activate_version_ignored(stream))

    def state_arrived(self, raw_value: bytes) -> None:
        """Held until the records before it are delivered: it cuts no batch.

        Batches are cut by size, bytes, age and the end of input; `_send_due` bounds the wait.
        """
        self.services.tracker.state(raw_value)

    def _send_due(self) -> float | None:
        """Send the batches past batch_max_age_seconds; seconds until the next one is due.

        Called by the reader on its own thread: between lines, and while it waits for input.
        """
        now = time.monotonic()
        dues = [due for sink in self._sinks() if (due := sink.send_due(now)) is not None]
        return max(0.0, min(dues) - now) if dues else None

    def process_endofpipe(self) -> None:
        """Send everything still pending, unless a signal asked to stop sending.

        A signal may also come while the last requests are sent: it ends them the same way.
        """
        with contextlib.suppress(Stopped):  # what was not sent is counted: reported below
            self._wind_down(send=self.reader.stopped_by is None)
        if self.reader.stopped_by is not None:
            self._report_stop(self.reader.stopped_by)
            return
        for warning in unused_stream_entries(self.config, self.services.tallies):
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
        parked = [sink for sink in self.parked_sinks() if isinstance(sink, RestSink)]
        sinks = [*parked, *self._sinks()]
        services = self.services
        try:
            if send:
                for sink in sinks:
                    sink.finish()
        finally:
            for sink in sinks:
                sink.close()
            services.files.close()
            services.workers.close()
            services.connections.close()
            if self.tunnels is not None:
                self.tunnels.close()
            services.credentials.close()
            self.progress.summary()

    def _report_stop(self, signum: int) -> None:
        name = signal.Signals(signum).name
        left = sum(sink.undelivered for sink in self._sinks())
        if left:
            raise TargetError(f"stopped by {name}: {left} records were not delivered{_RERUN}")
        self.logger.info("stopped by %s: every record received was delivered", name)

    def signal_arrived(self, signum: int) -> None:
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
        """The active sinks, which the SDK types as its Sink: all are RestSinks."""
        return [sink for sink in self.active_sinks() if isinstance(sink, RestSink)]

    @staticmethod
    def _write_state_line(value: bytes) -> None:
        sys.stdout.write(value.decode() + "\n")
        sys.stdout.flush()


_RERUN = "; every STATE emitted covers only delivered records, so rerun the tap from the last one"


def _discard(_state: bytes) -> None:
    """Dry run: nothing was delivered, so no STATE may be emitted."""


if __name__ == "__main__":
    TargetRestApi.cli()
