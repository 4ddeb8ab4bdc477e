"""Errors the user can act on: each message says what is wrong and what to do."""


class TargetError(Exception):
    """Base of every error that ends the run with one clear line and exit code 1."""


class SettingsError(TargetError):
    """A setting is missing, malformed, or does not fit the stream's SCHEMA."""


class InputError(TargetError):
    """A line of Singer input cannot be processed."""


class RecordError(TargetError):
    """One record cannot be shaped into a request (for example a null URL value)."""


class DeliveryError(TargetError):
    """A request was answered with an error status or could not be sent at all."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        answer: str = "",
        response: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.answer = answer
        self.response = response  # the last answer, when there was one


class Stopped(Exception):
    """A stop was asked for (SIGTERM, SIGINT): wind down without sending more."""


class Unexpected(TargetError):
    """An error nobody planned for (a bug, or a fault of a library below): still one line."""
