"""A request rate shared by every process that names the same budget, kept in Redis.

One atomic server-side step per request (GCRA with no burst, as `RateLimit` does in one
process): the script books the budget's next free start time and answers how long to wait
for it, so no two processes can take the same slot, whatever their clocks say (it reads
Redis's own TIME). The budget's key expires once its last booked slot has passed.
`redis` is imported only here and only when a run sets `rate_limit_redis_url`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from target_restapi.errors import SettingsError, Stopped, TargetError
from target_restapi.output.redact import REDACTED, redact_url, url_secrets

logger = logging.getLogger("target-restapi")

KEY_PREFIX = "target-restapi:"
SCHEMES = ("redis", "rediss")
DEFAULT_PORTS = {"http": 80, "https": 443}
FIRST_RETRY_SECONDS = 0.05
LONGEST_RETRY_SECONDS = 1.0

# KEYS[1]: the budget; ARGV[1]: microseconds between two request starts.
# Answers the microseconds to wait for the slot it booked.
GCRA = """
local interval = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or 0))
local later = start + interval
local ttl = math.ceil((later - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', later), 'PX', string.format('%d', ttl))
return start - now
"""


@dataclass(frozen=True, slots=True)
class Budget:
    """A shared budget: where it is kept, its name, and the rate it allows."""

    redis_url: str
    key: str
    per_second: float
    timeout_seconds: float


def shared_budget(
    values: Mapping[str, Any], where: str, *, stream: str | None = None
) -> Budget | None:
    """The shared budget these (merged) settings ask for, or None to pace in-process.

    `stream` names a stream that sets its own rate but not its own key: its budget is its
    own, named after the key it would otherwise share. Raises SettingsError naming the
    setting when the budget is incomplete.
    """
    url = values.get("rate_limit_redis_url")
    key = values.get("rate_limit_key")
    if not url:
        if key:
            raise SettingsError(
                f"{where}: setting 'rate_limit_key' names a budget kept in Redis; "
                "set 'rate_limit_redis_url' too, or remove it"
            )
        return None
    if _scheme(url) not in SCHEMES:
        raise SettingsError(
            f"{where}: setting 'rate_limit_redis_url' is {shown(url)!r}; "
            "use a redis:// or rediss:// URL"
        )
    per_second = values.get("max_requests_per_second")
    if not per_second:
        raise SettingsError(
            f"{where}: setting 'rate_limit_redis_url' shares 'max_requests_per_second', "
            "which is not set; set the rate of the shared budget"
        )
    if not key:
        key = derived_key(str(values.get("url") or ""))
        if key is None:
            raise SettingsError(
                f"{where}: setting 'url' takes its host from records, so no shared budget "
                "can be named after it; set 'rate_limit_key'"
            )
    if stream is not None:
        key = f"{key}:stream:{stream}"
    return Budget(str(url), str(key), float(per_second), float(values["timeout_seconds"]))


def derived_key(url: str) -> str | None:
    """`target-restapi:<scheme>://<host>:<port>` of an endpoint URL; None if records fill the host.

    Path, query and credentials are left out: every process that calls the same API
    derives the same name, and no secret reaches Redis.
    """
    scheme, _, rest = url.partition("://")
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    if "#{" in authority:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower()) or ""
    except ValueError:  # malformed (refused when a request is made): named as written
        return f"{KEY_PREFIX}{scheme.lower()}://{authority.rpartition('@')[2].lower()}"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{KEY_PREFIX}{parts.scheme.lower()}://{host}:{port}"


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # such as an unclosed IPv6 bracket
        return ""


def shown(url: str) -> str:
    """A Redis URL as it may be printed: no user-info, no query (it may hold a password)."""
    try:
        return redact_url(urlsplit(url)._replace(query="").geturl())
    except ValueError:
        return REDACTED


def redis_secrets(values: Mapping[str, Any]) -> list[str]:
    """The secrets in `rate_limit_redis_url`: the URL itself and its password, as written."""
    url = str(values.get("rate_limit_redis_url") or "")
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]  # malformed: refused at start-up, masked whole meanwhile
    found = url_secrets(url)
    for password in parse_qs(parts.query).get("password", []):  # parse_qs decodes
        found += [password, quote(password)]
    return [url, *found] if found or "@" in parts.netloc else []


class SharedRateLimit:
    """`RateLimit`'s interface over a budget in Redis: `wait(stop)` before each attempt.

    Connects at creation, so a Redis that is down or refuses the password stops the run
    before anything is sent. Later, an unanswered Redis is retried with backoff for up to
    `timeout_seconds`, then the run stops: a request is never sent unpaced.
    """

    def __init__(self, budget: Budget, where: str) -> None:
        import redis  # ~90 ms to import: only runs with a shared budget pay for it
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._key = budget.key
        self._interval = 1e6 / budget.per_second  # microseconds
        self._timeout = budget.timeout_seconds
        self._setting = f"{where}: setting 'rate_limit_redis_url' ({shown(budget.redis_url)})"
        self._errors = redis.RedisError
        self._lost = False
        self._lock = threading.Lock()
        try:
            client = redis.Redis.from_url(
                budget.redis_url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),  # the backoff is ours, bounded by the timeout
            )
            self._script = client.register_script(GCRA)
            client.script_load(GCRA)  # reaches Redis, logs in, and checks scripts may run
        except (redis.RedisError, ValueError) as exc:
            raise SettingsError(
                f"{self._setting}: Redis cannot be used ({exc}); start it, or fix the URL "
                "or its password"
            ) from None

    def wait(self, stop: threading.Event) -> None:
        """Block until this request's slot comes; raise Stopped when a stop is asked for."""
        wait_us = self._book(stop)
        if wait_us > 0 and stop.wait(wait_us / 1e6):
            raise Stopped

    def _book(self, stop: threading.Event) -> int:
        """Book a slot in Redis, retrying a lost Redis until `timeout_seconds` have passed."""
        deadline = time.monotonic() + self._timeout  # a Redis that hangs uses it up too
        pause = FIRST_RETRY_SECONDS
        while True:
            try:
                booked = int(self._script(keys=[self._key], args=[self._interval]))
            except self._errors as exc:
                self._report(lost=True, why=str(exc))
                now = time.monotonic()
                if now >= deadline:
                    raise TargetError(
                        f"{self._setting}: Redis did not answer for {self._timeout:g} s "
                        f"(timeout_seconds; {exc}): stopped so that no request is sent "
                        "unpaced; rerun once Redis is reachable"
                    ) from None
                if stop.wait(min(pause, deadline - now)):
                    raise Stopped from None
                pause = min(pause * 2, LONGEST_RETRY_SECONDS)
                continue
            if self._lost:
                self._report(lost=False, why="")
            return booked

    def _report(self, *, lost: bool, why: str) -> None:
        """Say once when Redis is lost and once when it is back, whatever the threads."""
        with self._lock:
            if self._lost == lost:
                return
            self._lost = lost
        if lost:
            logger.warning(
                "%s: Redis does not answer (%s); no request is sent until it does, for up to %g s",
                self._setting,
                why,
                self._timeout,
            )
        else:
            logger.info("%s: Redis answers again", self._setting)
