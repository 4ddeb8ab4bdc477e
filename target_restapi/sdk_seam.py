"""The one seam to singer-sdk: every SDK name the target uses passes through here.

Public names are re-exported so that other modules need not import `singer_sdk`. Private
names (overridden or called) are reached only through `SeamTarget` and `SeamSink`, which
turn each into a method of ours; `PRIVATE_NAMES` says why each is relied on, and
tests/test_sdk_seam.py fails when an SDK release removes or renames one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import (
    ConfigValidationError,
    InvalidJSONSchema,
    InvalidRecord,
    MapExpressionError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)
from singer_sdk.helpers import capabilities
from singer_sdk.helpers.capabilities import (
    ADD_RECORD_METADATA_CONFIG,
    BATCH_CONFIG,
    TARGET_VALIDATE_RECORDS_CONFIG,
    PluginCapabilities,
    TargetCapabilities,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib.encoding import GenericSingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.sinks import Sink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR, extend_validator_with_defaults

from target_restapi.shaping.deletes import DELETED_AT

__all__ = [
    "DEFAULT_JSONSCHEMA_VALIDATOR",
    "PRIVATE_NAMES",
    "BaseJSONSchemaValidator",
    "ConfigValidationError",
    "GenericSingerReader",
    "InvalidInputLine",
    "InvalidJSONSchema",
    "InvalidRecord",
    "MapExpressionError",
    "MissingKeyPropertiesError",
    "PluginCapabilities",
    "RecordsWithoutSchemaException",
    "SameRecordTransform",
    "SeamSink",
    "SeamTarget",
    "Sink",
    "StreamMapConfigError",
    "Target",
    "TargetCapabilities",
    "capabilities",
    "extend_validator_with_defaults",
    "th",
]

# The SDK's built-in settings that mean something here (no load_method, batch_size_rows:
# `request_mode` and `batch_size` decide sending).
OFFERED_BUILTINS = (ADD_RECORD_METADATA_CONFIG, BATCH_CONFIG, TARGET_VALIDATE_RECORDS_CONFIG)


class SeamTarget(Target):
    """The SDK's Target with its private hooks turned into the methods a subclass defines.

    The SDK calls the private methods below; each hands over to a named method of
    TargetRestApi (`check_settings`, `schema_arrived`, ...), which never sees SDK internals.
    """

    # Hooks the subclass defines (called by the overrides below).

    def check_settings(self, config: dict, *, raise_errors: bool) -> list[str]:
        """The settings check that replaces the SDK's."""
        raise NotImplementedError

    def schema_arrived(self, stream: str) -> None:
        """After the SDK made (or kept) the stream's sink for a SCHEMA."""
        raise NotImplementedError

    def record_arrived(self, message_dict: dict) -> None:
        """A RECORD message the SDK would have handled (its record is raw JSON)."""
        raise NotImplementedError

    def batch_arrived(self, message_dict: dict) -> None:
        """A BATCH message."""
        raise NotImplementedError

    def state_arrived(self, raw_value: bytes) -> None:
        """A STATE message's value, as received."""
        raise NotImplementedError

    def signal_arrived(self, signum: int) -> None:
        """SIGTERM or SIGINT."""
        raise NotImplementedError

    def activate_version_arrived(self, stream: str | None) -> None:
        """An ACTIVATE_VERSION message for `stream`."""
        raise NotImplementedError

    @classmethod
    def config_from_cli(cls, value: tuple[str, ...]) -> Any:
        """What `--config` values become before `__init__` reads them."""
        raise NotImplementedError

    # SDK private methods overridden: the SDK calls them.

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> Any:
        """Keep `--config` as given: files are read in `__init__`, within `invoke`."""
        return cls.config_from_cli(value)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        return self.check_settings(self._config, raise_errors=raise_errors)

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        self.schema_arrived(message_dict["stream"])

    def _process_record_message(self, message_dict: dict) -> None:
        self.record_arrived(message_dict)

    def _process_batch_message(self, message_dict: dict) -> None:
        self.batch_arrived(message_dict)

    def _process_state_message(self, message_dict: dict) -> None:
        self.state_arrived(message_dict["raw_value"])

    def _process_activate_version_message(self, message_dict: dict) -> None:
        self.activate_version_arrived(message_dict.get("stream"))

    def _write_state_message(self, state: dict) -> None:
        """Unused: the target's StateTracker decides when a STATE is safe to write."""

    def _handle_max_record_age(self) -> None:
        """Unused: sinks send on their own schedule; the SDK's periodic drain is not needed."""

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        self.signal_arrived(signum)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """Offer only the SDK settings that mean something here (`OFFERED_BUILTINS`).

        Target's own version would add load_method and batch_size_rows: skipped.
        """
        for builtin in OFFERED_BUILTINS:
            for name, schema in builtin["properties"].items():
                config_jsonschema["properties"].setdefault(name, schema)
        super(Target, cls).append_builtin_config(config_jsonschema)

    # SDK private names called.

    @classmethod
    def env_var_prefix(cls) -> str:
        """The prefix of the target's settings in the environment (TARGET_RESTAPI_)."""
        prefix: str = cls._env_var_prefix
        return prefix

    @property
    def settings_dict(self) -> dict:
        """The settings themselves (`config` is a read-only view of them)."""
        return self._config

    def map_record(self, message_dict: dict) -> None:
        """The SDK's record path: stream maps, validation, then the sink's process_record."""
        super()._process_record_message(message_dict)

    def require_sink(self, stream: str) -> None:
        """Raise the SDK's error for a stream that had no SCHEMA."""
        self._assert_sink_exists(stream)

    def active_sinks(self) -> list[Sink]:
        """The current sink of every stream."""
        return list(self._sinks_active.values())

    def active_sink(self, stream: str) -> Sink:
        """The sink the SDK made for the stream's latest SCHEMA."""
        return self._sinks_active[stream]

    def parked_sinks(self) -> list[Sink]:
        """Old sinks a SCHEMA change parked until the SDK's next drain."""
        return list(self._sinks_to_clear)

    def unpark_sinks(self) -> list[Sink]:
        """Take the parked sinks: the caller sends their records now."""
        sinks, self._sinks_to_clear = self._sinks_to_clear, []
        return sinks


class SeamSink(Sink):
    """The SDK's Sink with its private names turned into methods of ours."""

    def check_mapped(self, record: dict) -> dict:
        """Validate a record that came through stream maps (the subclass decides how)."""
        raise NotImplementedError

    def keeps_deleted_at(self) -> bool:
        """Whether a mapped record keeps a non-null `_sdc_deleted_at` (hard_delete on)."""
        raise NotImplementedError

    def _validate_and_parse(self, record: dict) -> dict:
        return self.check_mapped(record)

    def _remove_sdc_metadata_from_record(self, record: dict) -> None:
        deleted_at = record.get(DELETED_AT)
        super()._remove_sdc_metadata_from_record(record)
        if deleted_at is not None and self.keeps_deleted_at():
            record[DELETED_AT] = deleted_at

    @property
    def validator(self) -> Any:
        """The validator the SDK kept from `get_validator` (None: validation is off)."""
        return self._validator

    def require_key_properties(self, record: dict) -> None:
        """The SDK's key-property check (MissingKeyPropertiesError)."""
        self._singer_validate_message(record)


@dataclass(frozen=True)
class Private:
    """A private SDK name relied on, and how.

    `override`: we define it and the SDK calls it; `call`: we call or read it;
    `attribute`: set by `owner.__init__`, read or written by us.
    """

    owner: type
    name: str
    kind: str
    why: str
    ours: type | None = None  # the class that overrides it


PRIVATE_NAMES: Sequence[Private] = (
    Private(PluginBase, "cb_config", "override", "keep --config paths for __init__", SeamTarget),
    Private(
        PluginBase,
        "_validate_config",
        "override",
        "one-line settings check with fixes, instead of a log line per error",
        SeamTarget,
    ),
    Private(
        Target,
        "_process_schema_message",
        "override",
        "after the SDK makes the sink: pick the direct path, send a parked sink's records",
        SeamTarget,
    ),
    Private(
        Target,
        "_process_record_message",
        "override",
        "decode the raw record before the SDK's mapped path",
        SeamTarget,
    ),
    Private(
        Target,
        "_process_batch_message",
        "override",
        "BATCH files' records take the RECORD path, so STATE waits for them",
        SeamTarget,
    ),
    Private(
        Target,
        "_process_state_message",
        "override",
        "STATE is held until its records are delivered",
        SeamTarget,
    ),
    Private(
        Target,
        "_write_state_message",
        "override",
        "silenced: the SDK writes STATE on drains, before delivery",
        SeamTarget,
    ),
    Private(
        Target,
        "_handle_max_record_age",
        "override",
        "silenced: its periodic drain would write STATE early",
        SeamTarget,
    ),
    Private(
        Target,
        "_handle_termination",
        "override",
        "the SDK's handler drains and exits 0 even when sending fails (meltano/sdk#3775)",
        SeamTarget,
    ),
    Private(
        Target,
        "_process_activate_version_message",
        "override",
        "said once per stream instead of the SDK's two warnings per message",
        SeamTarget,
    ),
    Private(
        Target,
        "_assert_sink_exists",
        "call",
        "a BATCH for a stream with no SCHEMA fails as a RECORD would",
    ),
    Private(PluginBase, "_env_var_prefix", "call", "settings are read from the environment here"),
    Private(PluginBase, "_config", "attribute", "the settings; streams entries are inherited"),
    Private(Target, "_sinks_active", "attribute", "the sinks, for sending due batches and stop"),
    Private(Target, "_sinks_to_clear", "attribute", "parked sinks are sent at once: input order"),
    Private(
        Sink,
        "_validate_and_parse",
        "override",
        "the SDK's logs a traceback and rewrites date-times; values pass as received",
        SeamSink,
    ),
    Private(
        Sink,
        "_remove_sdc_metadata_from_record",
        "override",
        "mapped records lose _sdc_* fields: with hard_delete a delete keeps its mark",
        SeamSink,
    ),
    Private(Sink, "_validator", "attribute", "the validator get_validator returned"),
    Private(
        Sink,
        "_singer_validate_message",
        "call",
        "the key-property check of records that skip the compiled validator",
    ),
    Private(
        Sink,
        "_parse_timestamps_in_record",
        "call",
        "the date-time rewrite our _validate_and_parse leaves out: its name guards that",
    ),
)
