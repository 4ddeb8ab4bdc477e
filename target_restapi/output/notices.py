"""Warnings said once per run, however often their cause comes back.

A stream's SCHEMA may be sent again and again, and an ACTIVATE_VERSION message comes at
every sync of a stream: one line says what the user needs to know.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable


class Notices:
    """Logs each warning the first time its key is seen."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._said: set[Hashable] = set()
        self._lock = threading.Lock()

    def warn(self, key: Hashable, message: str) -> None:
        """Log `message` as a warning unless `key` was already warned about."""
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        self._logger.warning("%s", message)


def activate_version_ignored(stream: str | None) -> str:
    """Why an ACTIVATE_VERSION message does nothing here, and what to do instead."""
    return (
        f"stream '{stream}': ACTIVATE_VERSION messages are ignored: records missing from a "
        "full-table sync are not deleted at the endpoint; to mirror deletes, use LOG_BASED "
        "(or soft-deleting) replication, which marks deleted records with _sdc_deleted_at, "
        "and hard_delete: true (see docs/deletes.md)"
    )
