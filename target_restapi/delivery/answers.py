"""What a 2xx answer says: JMESPath success conditions, per-item results, picked fields.

Pure: compiled once at start-up from the settings, then applied to an answer's bytes. A
request verdict says whether the request as a whole failed (a false or null
`success_condition`, a body that is not JSON, an `item_results` list of the wrong
length); for the others it lists which entries fail `item_success_condition` and the
`response_fields` picked for each record. Knows nothing of HTTP or Singer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from target_restapi.errors import SettingsError

if TYPE_CHECKING:
    from target_restapi.delivery.expressions import Expression

# With rules set, answers are read up to this size (else 72 KiB): a condition needs the
# whole JSON body. A larger answer is a failure of its request, with this reason.
ANSWER_BYTES = 8 * 1024 * 1024

# A response file line per record holds these, then the picked fields.
RECORD_COLUMNS = ("stream", "keys", "status", "error")

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """The answer settings of one stream, compiled."""

    success: Expression | None = None
    items: Expression | None = None
    item_success: Expression | None = None
    fields: tuple[tuple[str, Expression], ...] = ()
    retry: bool = False

    @property
    def active(self) -> bool:
        """Whether answers are read as JSON at all."""
        return bool(self.success or self.items or self.fields)

    @property
    def per_record(self) -> bool:
        """Whether the verdict names records one by one (their keys must be kept)."""
        return bool(self.items or self.fields)

    def shown(self) -> str:
        """The settings in force, on one line (for a dry run)."""
        parts = [e.describe() for e in (self.success, self.items, self.item_success) if e]
        if self.fields:
            parts.append("response_fields " + ", ".join(f"{n}={e.text!r}" for n, e in self.fields))
        if self.retry:
            parts.append("retry_on_condition true")
        return "; ".join(parts)

    def judge(self, content: bytes, complete: bool, records: int) -> Verdict:
        """Read one 2xx answer to a request that carried `records` records.

        `complete`: `content` is the whole body (else only its start was read).
        """
        needs_json = bool(self.success or self.items)
        if not complete:
            if needs_json:
                return Verdict(
                    failure=f"its answer is larger than {ANSWER_BYTES // (1024 * 1024)} MiB, "
                    "too large to judge"
                )
            return Verdict(fields=[None] * records if self.fields else None)
        try:
            document = _decode.decode(content)
        except (msgspec.DecodeError, UnicodeDecodeError):
            rule = self.success or self.items
            if rule is not None:
                return Verdict(failure=f"its answer is not JSON, so {rule.setting} cannot be read")
            return Verdict(fields=[None] * records if self.fields else None)
        if self.success is not None:
            result = self.success.search(document)
            if result is None or result is False:
                return Verdict(failure=f"{self.success.describe()} gave {_text(result)}")
        if self.items is None:
            fields = [self._pick(document)] * records if self.fields else None
            return Verdict(fields=fields)
        entries = self.items.search(document)
        if not isinstance(entries, list) or len(entries) != records:
            got = (
                f"a list of {len(entries)} entries" if isinstance(entries, list) else _text(entries)
            )
            return Verdict(
                failure=f"{self.items.describe()} gave {got}, not one entry per record ({records})"
            )
        failed = []
        if self.item_success is not None:
            check = self.item_success.search
            failed = [i for i, entry in enumerate(entries) if check(entry) in (None, False)]
        fields = [self._pick(entry) for entry in entries] if self.fields else None
        return Verdict(entries=entries, failed=failed, fields=fields)

    def _pick(self, data: Any) -> dict[str, Any]:
        return {name: expression.search(data) for name, expression in self.fields}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an answer said: a failure of the whole request, or per-record results."""

    failure: str | None = None
    entries: list[Any] | None = None
    failed: list[int] = field(default_factory=list)
    fields: Sequence[dict[str, Any] | None] | None = None  # one per record, in order


def entry_text(entry: Any) -> str:
    """An entry of item_results as compact JSON text."""
    return _text(entry)


def _text(value: Any) -> str:
    try:
        return _encode.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


def compile_expression(setting: str, text: Any, where: str) -> Expression:
    """Compile one expression (see expressions.py).

    jmespath is imported here, by the runs that set an expression, not at start-up.
    """
    from target_restapi.delivery import expressions

    return expressions.compile_expression(setting, text, where)


def compile_rules(values: Mapping[str, Any], where: str, *, request_mode: str) -> AnswerRules:
    """The answer settings of merged `values`, compiled; refuse what cannot work."""
    compiled = {
        name: compile_expression(name, values[name], where)
        for name in ("success_condition", "item_results", "item_success_condition")
        if values.get(name) is not None
    }
    fields = values.get("response_fields") or {}
    if not isinstance(fields, Mapping):
        raise SettingsError(
            f"{where}: setting 'response_fields' must be an object of output name to "
            "JMESPath expression"
        )
    picked = tuple(
        (str(name), compile_expression(f"response_fields.{name}", text, where))
        for name, text in fields.items()
    )
    taken = [name for name, _ in picked if name in RECORD_COLUMNS]
    if taken:
        raise SettingsError(
            f"{where}: setting 'response_fields' names {taken[0]!r}, a column the response "
            f"file already has ({', '.join(RECORD_COLUMNS)}); choose another name"
        )
    if "item_success_condition" in compiled and "item_results" not in compiled:
        raise SettingsError(
            f"{where}: setting 'item_success_condition' needs 'item_results', the list of "
            "per-record entries it is applied to (e.g. item_results: items); for the answer "
            "as a whole use success_condition"
        )
    if picked and "item_results" not in compiled and request_mode != "single":
        raise SettingsError(
            f"{where}: setting 'response_fields' in request_mode '{request_mode}' needs "
            "'item_results': one answer covers many records, so each record's fields must "
            "come from its own entry (e.g. item_results: items)"
        )
    return AnswerRules(
        success=compiled.get("success_condition"),
        items=compiled.get("item_results"),
        item_success=compiled.get("item_success_condition"),
        fields=picked,
        retry=bool(values.get("retry_on_condition")),
    )
