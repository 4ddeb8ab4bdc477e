"""SSH tunnel: reach endpoints through an SSH server's local port forwards.

One forward per destination host and port, opened through sshtunnel/paramiko before the
first request, reused for the run and reopened when it drops. Requests keep their own URL:
the session's connection pools only connect their sockets to the forward's local end, so
the Host header, SNI and the certificate check still use the URL's host name.
"""

from __future__ import annotations

import atexit
import functools
import logging
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import paramiko
import requests
from requests import PreparedRequest
from sshtunnel import BaseSSHTunnelForwarderError, SSHTunnelForwarder
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util.connection import create_connection

from target_restapi.delivery.deadline import WatchedAdapter
from target_restapi.errors import SettingsError
from target_restapi.templates import PLACEHOLDER
from target_restapi.tunnel.settings import TunnelSettings

CONNECT_TIMEOUT = 15  # seconds for reaching the SSH server, its banner, and the login
LOCAL_HOST = "127.0.0.1"  # forwards listen on loopback only (sshtunnel's default is 0.0.0.0)
DEFAULT_PORTS = {"http": 80, "https": 443}

if TYPE_CHECKING:  # the mixin is only ever mixed into urllib3 connection classes
    _Connection = HTTPConnection
else:
    _Connection = object


class TunnelError(Exception):
    """The SSH server could not be reached or refused the tunnel; the message says why."""


def open_tunnels(config: Mapping[str, Any], logger: logging.Logger) -> Tunnels | None:
    """At start-up: log in and open the forwards the URL settings name; None when disabled.

    A bad key, login, host key or SSH address raises SettingsError before any input is read.
    """
    settings = TunnelSettings.from_config(config)
    if settings is None:
        return None
    if settings.host_key is None:
        logger.warning(
            "ssh_tunnel.host_key is not set: the SSH server's host key is NOT checked; "
            "set it to the server's known_hosts line"
        )
    streams = (config.get("streams") or {}).values()
    urls = [
        layer.get(setting)
        for layer in (config, *(stream or {} for stream in streams))
        for setting in ("url", "delete_url")
    ]
    tunnels = Tunnels(settings, logger)
    try:
        tunnels.check_login()
        for destination in {d for d in map(_destination, urls) if d is not None}:
            tunnels.local_address(*destination)
    except TunnelError as exc:
        tunnels.close()
        raise SettingsError(str(exc)) from None
    return tunnels


def _destination(url: Any) -> tuple[str, int] | None:
    """Host and port of a URL setting; None when a placeholder fills them per record."""
    if not isinstance(url, str):
        return None
    head = "/".join(url.split("/", 3)[:3])  # scheme://authority
    if PLACEHOLDER.search(head):
        return None
    parts = urlsplit(head)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


class Tunnels:
    """Local forwards through one SSH server, one per destination; safe across threads."""

    def __init__(self, settings: TunnelSettings, logger: logging.Logger) -> None:
        self._settings = settings
        self._logger = logger
        self._forwards: dict[tuple[str, int], SSHTunnelForwarder] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Our own lines say when a tunnel opens, drops and closes; keep the libraries' errors.
        self._library_logger = logger.getChild("sshtunnel")
        self._library_logger.setLevel(logging.ERROR)
        logging.getLogger("paramiko").setLevel(logging.WARNING)
        atexit.register(self.close)  # also after errors that skip the end of input

    def check_login(self) -> None:
        """Log in once with paramiko to learn what is wrong, if anything.

        sshtunnel only logs why it could not connect, and connects without a time limit.
        """
        s = self._settings
        client = paramiko.SSHClient()
        if s.host_key is not None:
            name = s.host if s.port == 22 else f"[{s.host}]:{s.port}"
            client.get_host_keys().add(name, s.host_key.get_name(), s.host_key)
            client.set_missing_host_key_policy(_Expect(s.host_key))
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # warned at start
        try:
            client.connect(
                s.host,
                s.port,
                username=s.username,
                pkey=s.key,
                password=s.password,
                timeout=CONNECT_TIMEOUT,
                banner_timeout=CONNECT_TIMEOUT,
                auth_timeout=CONNECT_TIMEOUT,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            raise TunnelError(
                f"ssh_tunnel: the SSH server {s.host}:{s.port} presented host key "
                f"{exc.key.get_name()} {exc.key.fingerprint}, not the key of "
                "ssh_tunnel.host_key; check the setting (or a man in the middle)"
            ) from None
        except paramiko.AuthenticationException:
            raise TunnelError(
                f"ssh_tunnel: the SSH server rejected the login as {s.where}; check "
                "ssh_tunnel.username, private_key or password, and the server's authorized_keys"
            ) from None
        except (paramiko.SSHException, OSError) as exc:
            raise TunnelError(
                f"ssh_tunnel: cannot connect to the SSH server {s.where}: {exc}"
            ) from None
        finally:
            client.close()

    def local_address(self, host: str, port: int) -> tuple[str, int]:
        """The local end of the forward to `host:port`; opened or reopened as needed."""
        destination = (host.strip("[]").lower(), port)
        with self._lock:
            if self._closed:
                raise TunnelError("ssh_tunnel: the tunnels are closed")
            forward = self._forwards.get(destination)
            if forward is not None and not forward.is_active:
                self._logger.warning(
                    "ssh_tunnel: the tunnel to %s:%d dropped; reopening it", *destination
                )
                del self._forwards[destination]
                forward.stop(force=True)
                forward = None
            if forward is None:
                forward = self._open(destination)
                self._forwards[destination] = forward
            address: tuple[str, int] = forward.local_bind_address  # sshtunnel is untyped
            return address

    def mount(self, session: requests.Session, pool_maxsize: int = 10) -> None:
        """Send the session's requests through the tunnels."""
        adapter = TunnelAdapter(self, pool_maxsize=pool_maxsize)
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    def close(self) -> None:
        """Close every forward and its SSH connection; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            forwards, self._forwards = list(self._forwards.values()), {}
        for forward in forwards:
            forward.stop(force=True)
        if forwards:
            self._logger.info("ssh_tunnel: closed %d tunnel(s)", len(forwards))
        atexit.unregister(self.close)

    def _open(self, destination: tuple[str, int]) -> SSHTunnelForwarder:
        s = self._settings
        forward = SSHTunnelForwarder(
            (s.host, s.port),
            ssh_username=s.username,
            ssh_pkey=s.key,
            ssh_password=s.password,
            ssh_host_key=s.host_key,
            ssh_config_file=None,  # the settings are the whole truth: no ~/.ssh/config,
            allow_agent=False,  # no agent keys,
            host_pkey_directories=[],  # no ~/.ssh keys
            remote_bind_address=destination,
            local_bind_address=(LOCAL_HOST, 0),
            logger=self._library_logger,
        )
        try:
            forward.start()
        except BaseSSHTunnelForwarderError as exc:
            forward.stop(force=True)
            raise TunnelError(
                f"ssh_tunnel: cannot open a tunnel to {destination[0]}:{destination[1]} "
                f"through {s.where}: {exc.value}"
            ) from None
        local = forward.local_bind_address
        self._logger.info(
            "ssh_tunnel: %s:%d reaches %s:%d through %s", *local, *destination, s.where
        )
        return forward


class _Expect(paramiko.MissingHostKeyPolicy):
    """Refuse a server whose key type differs from ssh_tunnel.host_key, naming its key."""

    def __init__(self, expected: paramiko.PKey) -> None:
        self._expected = expected

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Called only when the server's key type is not the one expected."""
        raise paramiko.BadHostKeyException(hostname, key, self._expected)


# The requests side: urllib3 pools whose connections' sockets go to a forward's local end.


class TunnelAdapter(WatchedAdapter):
    """A requests adapter whose connections go through the tunnels, never to a proxy.

    HTTP(S)_PROXY and ALL_PROXY would send the requests to the proxy, around the tunnel.
    """

    def __init__(self, tunnels: Tunnels, **kwargs: Any) -> None:
        self._tunnels = tunnels  # first: the adapter's __init__ makes the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pools get `tunnels` once urllib3 made the pool key, which has no field for it."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(TunnelHTTPConnectionPool, tunnels=self._tunnels),
            "https": functools.partial(TunnelHTTPSConnectionPool, tunnels=self._tunnels),
        }

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send without the proxies requests took from the environment."""
        kwargs["proxies"] = None
        return super().send(request, *args, **kwargs)


class _Through(_Connection):
    """Connects to the tunnel instead of `host:port`; host and port stay the URL's.

    So the Host header, SNI and the certificate's host name check are unchanged.
    """

    def __init__(self, *args: Any, tunnels: Tunnels, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tunnels = tunnels

    def _new_conn(self) -> socket.socket:
        try:
            local = self._tunnels.local_address(self.host, self.port)
            return create_connection(local, self.timeout, socket_options=self.socket_options)
        except (TunnelError, OSError) as exc:
            # A NewConnectionError becomes requests.ConnectionError: retried like any other.
            raise NewConnectionError(self, f"no connection through the SSH tunnel: {exc}") from exc


class TunnelHTTPConnection(_Through, HTTPConnection):
    """An http connection through the tunnel."""


class TunnelHTTPSConnection(_Through, HTTPSConnection):
    """An https connection through the tunnel; TLS checks the URL's host name."""


class TunnelHTTPConnectionPool(HTTPConnectionPool):
    """Keeps tunnelled http connections to one URL host and port."""

    ConnectionCls = TunnelHTTPConnection


class TunnelHTTPSConnectionPool(HTTPSConnectionPool):
    """Keeps tunnelled https connections to one URL host and port."""

    ConnectionCls = TunnelHTTPSConnection
