"""Compiled JMESPath expressions, the language of the answer settings (answers.py).

A module of its own so that jmespath is imported only by runs that set an expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import IncompleteExpressionError, JMESPathError
from jmespath.parser import ParsedResult

from target_restapi.errors import SettingsError


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled JMESPath expression and the setting it came from."""

    setting: str
    text: str
    parsed: ParsedResult

    def search(self, data: Any) -> Any:
        """The expression's value on `data`; a type error in a function call reads as null."""
        try:
            return self.parsed.search(data)
        except JMESPathError:
            return None

    def describe(self) -> str:
        return f"{self.setting} {self.text!r}"


def compile_expression(setting: str, text: Any, where: str) -> Expression:
    """Compile one expression, or raise SettingsError naming the setting and the position."""
    if not isinstance(text, str) or not text.strip():
        raise SettingsError(f"{where}: setting '{setting}' must be a JMESPath expression")
    try:
        return Expression(setting, text, jmespath.compile(text))
    except JMESPathError as exc:
        position = getattr(exc, "lex_position", getattr(exc, "lexer_position", None))
        at = f" at character {position + 1}" if isinstance(position, int) else ""
        reason = getattr(exc, "message", None) or getattr(exc, "msg", None) or "syntax error"
        if isinstance(exc, IncompleteExpressionError):
            reason = "the expression ends too soon"
        raise SettingsError(
            f"{where}: setting '{setting}' is not a valid JMESPath expression{at} "
            f"({reason}): {text!r}"
        ) from None
