"""Singer input, line by line: decoded with msgspec, keeping each record's raw JSON bytes.

The raw bytes let the common case (body = the record) send values exactly as received;
line numbers go into every input error so the user can find the bad line.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

import msgspec

from target_restapi.errors import (
    InputError,
    RecordError,
    SettingsError,
    Stopped,
    TargetError,
    Unexpected,
)
from target_restapi.sdk_seam import (
    GenericSingerReader,
    InvalidInputLine,
    InvalidJSONSchema,
    InvalidRecord,
    MapExpressionError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)
from target_restapi.singer_input.interruptible import interruptible

MESSAGE_TYPES = ("RECORD", "SCHEMA", "STATE", "ACTIVATE_VERSION", "BATCH")
INPUT_ERRORS = (
    InputError,
    RecordError,
    SettingsError,
    InvalidInputLine,
    InvalidJSONSchema,
    InvalidRecord,
    MapExpressionError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    StreamMapConfigError,
)


Stats = dict[str, int]  # lines per message type
DUE_CHECK_LINES = 256  # lines between two looks at the clock when the input never waits


class Lane(Protocol):
    """A stream whose records, while they pass `check`, need nothing but to be collected.

    Between two lines that are not its records, the reader collects them (at most `room`
    at a time, at most DUE_CHECK_LINES) and hands them over with one `settle` call: the
    per-record cost is the check and an append. A record `check` raises for goes the full
    way (the stream's `direct` accept), which decides exactly as if there were no lane.
    """

    check: Callable[[Any], object]

    def room(self) -> int:
        """How many records it takes now (0: none until a record went the full way)."""
        ...

    def settle(self, records: list[msgspec.Raw]) -> None:
        """The checked records collected since the last call, in input order."""
        ...


class Envelope(msgspec.Struct, gc=False):
    """The fields of any Singer message; `record` and `value` stay raw JSON.

    Untracked by the garbage collector (it holds no cycles): one is made per input line.
    """

    type: str
    stream: str | None = None
    record: msgspec.Raw = msgspec.Raw()
    schema: dict[str, Any] | None = None
    key_properties: list[str] | None = None
    bookmark_properties: list[str] | None = None
    value: msgspec.Raw = msgspec.Raw()
    version: int | None = None
    time_extracted: str | None = None
    encoding: dict[str, Any] | None = None
    manifest: list[str] | None = None


_envelope = msgspec.json.Decoder(Envelope)


def decode_envelope(line: bytes | str) -> Envelope:
    """The envelope of one Singer message, its type checked."""
    try:
        env = _envelope.decode(line)
    except msgspec.DecodeError as exc:
        raise InputError(
            f"not a valid Singer message ({exc}); the tap must write one JSON object per line"
        ) from None
    return checked(env)


def checked(env: Envelope) -> Envelope:
    """The envelope, once its type and the fields that type needs are there."""
    if env.type not in MESSAGE_TYPES:
        raise InputError(
            f"unknown message type {env.type!r}; expected one of {', '.join(MESSAGE_TYPES)}: "
            "the tap's output must hold Singer messages only (does something else print to it?)"
        )
    if env.type == "RECORD" and (env.stream is None or not env.record):
        raise InputError("RECORD message needs 'stream' and 'record'; fix the tap's output")
    if env.type == "STATE":
        if not env.value:
            raise InputError("STATE message needs a 'value'; fix the tap's output")
        # Raw bytes skip msgspec's UTF-8 check; a held STATE must fail here, not when printed.
        bytes(env.value).decode()
    return env


def as_message(env: Envelope) -> dict[str, Any]:
    """The dict the SDK's handlers take; a record stays raw JSON under `raw`."""
    if env.type == "RECORD":
        return {"type": "RECORD", "stream": env.stream, "raw": env.record}
    message = {
        field: getattr(env, field)
        for field in env.__struct_fields__
        if getattr(env, field) is not None and field not in ("record", "value")
    }
    if env.type == "STATE":
        message["raw_value"] = bytes(env.value)
    return message


class SingerLineReader(GenericSingerReader[bytes]):
    """Reads Singer messages and reports errors with the number of the line at fault.

    `stop` ends reading between two lines; `interrupt` is for a signal handler and also
    ends a read that is waiting for the tap's next line.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.stopped_by: int | None = None
        self.before_failing: Callable[..., None] | None = None
        self.on_record: Callable[[str, bytes], None] | None = None
        # Per stream, what takes its records' raw JSON without a call in between (a sink's).
        self.direct: dict[str, Callable[[bytes], None]] = {}
        self.lanes: dict[str, Lane] = {}  # per stream, where its plain records are collected
        self._lane: Lane | None = None  # the lane whose records are being collected
        self._collected: list[msgspec.Raw] = []
        self._stats: Stats = {}
        # Sends what is due; returns seconds until it is due again (None: nothing waits).
        self.send_due: Callable[[], float | None] = _nothing_due
        self.line_number = 0

    @property
    def default_input(self) -> IO[bytes]:
        """Standard input, in bytes so records can travel as received; a signal ends a wait."""
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):  # replaced by a test harness
            return sys.stdin.buffer
        if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
            return sys.stdin.buffer
        return interruptible(fd, self.stop, self._waiting)

    def deserialize_json(self, line: bytes) -> dict:
        """One decoded message (the SDK's interface)."""
        return as_message(decode_envelope(line))

    def interrupt(self, signum: int) -> None:
        """Stop reading (called from a signal handler)."""
        self.stopped_by = signum
        self.stop.set()

    def _fail(self, *, send: bool) -> None:
        if self.before_failing is not None:
            self.before_failing(send=send)

    def process_lines(
        self,
        file_input: IO[bytes] | IO[str] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> Counter[str]:
        """Dispatch each line to its handler; input errors name the line."""
        source = file_input or self.default_input
        stats = dict.fromkeys(MESSAGE_TYPES, 0)
        try:
            lines = iter(getattr(source, "buffer", source))
            self._dispatch(lines, callbacks, stats)
        except Stopped:  # a request sent on this thread gave up for the stop: read no more
            pass
        except INPUT_ERRORS as exc:
            self._fail(send=True)
            # Keep the exception's own type (the SDK's tests expect it); add the line.
            exc.args = (f"input line {self.line_number}: {exc.args[0]}", *exc.args[1:])
            raise
        except UnicodeDecodeError as exc:
            self._fail(send=True)
            raise InputError(
                f"input line {self.line_number}: not valid UTF-8 ({exc.reason}); "
                "the tap must write UTF-8 text"
            ) from None
        except TargetError:  # a failed delivery: send nothing more, close what is open
            self._fail(send=False)
            raise
        except Exception as exc:  # nobody planned for it: send nothing more, say it in a line
            self._fail(send=False)
            raise Unexpected(
                f"input line {self.line_number}: unexpected {type(exc).__name__}: {exc}; "
                "nothing past this line was acknowledged: rerun from the last STATE, and "
                "report this error if it persists"
            ) from exc
        return Counter(stats)

    def _dispatch(
        self,
        lines: Iterator[bytes | str],
        callbacks: dict[str, Callable[[dict], None]],
        stats: Stats,
    ) -> None:
        """Each line to its handler, counted in `stats`.

        While a stream's lane has room (see `Lane`), its records are only checked and
        collected here; any other line first settles them with the lane. So does every
        DUE_CHECK_LINES-th record (a stop and batches that are due are looked at between),
        and waiting for the tap's next line.
        """
        decode, direct, lanes, stopped = _envelope.decode, self.direct, self.lanes, self.stop.is_set
        number, due_line = self.line_number, self.line_number + DUE_CHECK_LINES
        self._stats = stats
        items = self._collected  # cleared, never replaced: `_settle` may run while we wait
        lane: Lane | None = None  # taking `taken`'s records into `items`, up to `room`
        taken: str | None = None
        check: Callable[[Any], object] = bool  # the lane's, once one is taken
        room = 0
        try:
            for line in lines:
                number += 1
                try:
                    env: Envelope | None = decode(line)
                except msgspec.DecodeError:
                    env = None  # the full path says why, unless the line is blank
                if lane is not None:  # the hot path: checked, collected, nothing else
                    took = False
                    if env is not None and env.type == "RECORD" and env.stream == taken:
                        try:
                            check(env.record)
                        except Exception:  # refused, or no record: the full path judges
                            pass
                        else:
                            items.append(env.record)
                            if len(items) < room:
                                continue
                            took = True
                    self.line_number = number
                    self._settle()
                    self._lane = None
                    if took:  # the lane was full: look around, then take on
                        if stopped():
                            break
                        if number >= due_line:
                            due_line = number + DUE_CHECK_LINES
                            self.send_due()
                        if (room := min(lane.room(), DUE_CHECK_LINES)) > 0:
                            self._lane = lane
                        else:
                            lane = None
                        continue
                    lane = None
                self.line_number = number
                if stopped():  # checked after the read: a stop ends the wait
                    break  # for a line, and the line may have been cut short
                if number >= due_line:  # input that never waits (a file) still sends
                    due_line = number + DUE_CHECK_LINES  # batches that are due
                    self.send_due()
                if env is None:
                    if line.isspace():
                        continue
                    env = decode_envelope(line)  # raises the error that names the problem
                kind = env.type
                stream = env.stream
                if kind == "RECORD" and env.record and stream and (accept := direct.get(stream)):
                    accept(env.record)  # no message dict, no call in between
                    if (lane := lanes.get(stream)) is not None:
                        room = min(lane.room(), DUE_CHECK_LINES)
                        if room > 0:
                            taken, check, self._lane = stream, lane.check, lane
                        else:
                            lane = None
                else:
                    env = checked(env)
                    if kind == "RECORD" and self.on_record is not None and env.stream:
                        self.on_record(env.stream, env.record)
                    else:
                        callbacks[kind](as_message(env))
                stats[kind] += 1
            else:
                self.line_number = number + 1  # past the last line, as when a stop ends
        finally:
            self._settle()
            self._lane = None

    def _settle(self) -> None:
        """Hand the records the open lane collected over to it, if any."""
        items = self._collected
        if items and self._lane is not None:
            records = items[:]
            items.clear()
            self._stats["RECORD"] += len(records)
            self._lane.settle(records)

    def _waiting(self) -> float | None:
        """The tap is silent: settle what was collected, then send what is due."""
        self._settle()
        return self.send_due()


def _nothing_due() -> None:
    """Until a target says otherwise, nothing waits to be sent."""
