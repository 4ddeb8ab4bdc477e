"""The target: settings, SDK wiring, and ownership of STATE emission.

Records of streams without stream maps take a direct path to their sink (validate,
shape, send) that skips the SDK's per-record work; mapped streams use the SDK's path.
STATE lines are written by the StateTracker once every earlier record was delivered.
"""

from __future__ import annotations

import sys
from typing import Any

from singer_sdk import Target
from singer_sdk.helpers.capabilities import (
    ADD_RECORD_METADATA_CONFIG,
    TARGET_VALIDATE_RECORDS_CONFIG,
)
from singer_sdk.mapper import SameRecordTransform

from target_restapi.errors import TargetError
from target_restapi.reader import SingerLineReader
from target_restapi.settings import CONFIG_SCHEMA, check_all
from target_restapi.sinks import RestSink
from target_restapi.state import StateTracker


class TargetRestApi(Target):
    """Singer target that delivers records to any HTTP endpoint."""

    name = "target-restapi"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = RestSink
    message_reader_class = SingerLineReader

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Sinks send as records arrive, on the reading thread; nothing is drained in parallel.
        self.max_parallelism = 1
        check_all(self.config)
        self.tracker = StateTracker(self._write_state_line)
        self._direct: dict[str, RestSink] = {}

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:  # type: ignore[override]
        """Run, turning errors the user can act on into one clear line and exit code 1."""
        try:
            super().invoke(**kwargs)
        except TargetError as exc:
            cls.logger.error("%s", exc)
            sys.exit(1)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """Offer only the SDK settings that mean something here.

        No load_method or batch_size_rows: `request_mode` and `batch_size` decide sending.
        """
        for builtin in (ADD_RECORD_METADATA_CONFIG, TARGET_VALIDATE_RECORDS_CONFIG):
            for name, schema in builtin["properties"].items():
                config_jsonschema["properties"].setdefault(name, schema)
        super(Target, cls).append_builtin_config(config_jsonschema)

    # Messages

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        # A schema change parks the old sink; send its records now to keep input order.
        for sink in self._sinks_to_clear:
            sink.clean_up()
        self._sinks_to_clear = []
        stream = message_dict["stream"]
        maps = self.mapper.stream_maps[stream]
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

    def _process_record_message(self, message_dict: dict) -> None:
        sink = self._direct.get(message_dict["stream"])
        if sink is None:
            super()._process_record_message(message_dict)
        else:
            sink.accept(message_dict["record"], message_dict["raw"])

    def _process_state_message(self, message_dict: dict) -> None:
        # Cut partial batches so a STATE never waits behind a half-filled batch.
        for sink in self._sinks_active.values():
            if sink.settings.request_mode == "batch":  # type: ignore[attr-defined]
                sink.flush()  # type: ignore[attr-defined]
        self.tracker.state(message_dict["raw_value"])

    def _handle_max_record_age(self) -> None:
        """Sinks send on their own schedule; the SDK's periodic drain is not needed."""

    def process_endofpipe(self) -> None:
        """Send everything still pending; the tracker then releases the last STATE."""
        for sink in self._sinks_active.values():
            sink.clean_up()

    # STATE output

    def _write_state_message(self, state: dict) -> None:
        """The SDK's STATE writer is unused: StateTracker decides when STATE is safe."""

    @staticmethod
    def _write_state_line(value: bytes) -> None:
        sys.stdout.write(value.decode() + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    TargetRestApi.cli()
