"""The `ssh_tunnel` setting: its schema, and its checked values with the keys parsed.

Key and host key text is parsed once at start-up; every error names the setting and
says what to do, and never quotes key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_restapi.errors import SettingsError
from target_restapi.sdk_seam import th

if TYPE_CHECKING:
    import paramiko

SETTING = th.Property(
    "ssh_tunnel",
    th.ObjectType(
        th.Property(
            "enable",
            th.BooleanType,
            default=False,
            description="Send every request through a local port forward of this SSH server.",
        ),
        th.Property("host", th.StringType, description="SSH server host name or address."),
        th.Property(
            "port", th.IntegerType(minimum=1, maximum=65535), default=22, description="SSH port."
        ),
        th.Property("username", th.StringType, description="User name on the SSH server."),
        th.Property(
            "private_key",
            th.StringType,
            secret=True,
            description="Private key for the login, as PEM or OpenSSH text.",
        ),
        th.Property(
            "private_key_password",
            th.StringType,
            secret=True,
            description="Passphrase of an encrypted `private_key`.",
        ),
        th.Property(
            "password", th.StringType, secret=True, description="Password for a password login."
        ),
        th.Property(
            "host_key",
            th.StringType,
            description="The SSH server's key as a `known_hosts` line (`[host]:port type "
            "base64`, or `type base64`); without it the server's key is not checked.",
        ),
    ),
    description="Reach the endpoints through an SSH server (bastion); URLs and TLS checks "
    "are unchanged.",
)


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    """The checked `ssh_tunnel` settings, keys already parsed."""

    host: str
    port: int
    username: str
    key: paramiko.PKey | None
    password: str | None
    host_key: paramiko.PKey | None

    @property
    def where(self) -> str:
        """`user@host:port`, for messages."""
        return f"{self.username}@{self.host}:{self.port}"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TunnelSettings | None:
        """Parse `ssh_tunnel`; None when it is not enabled. Bad values raise SettingsError."""
        values = config.get("ssh_tunnel") or {}
        if not values.get("enable"):
            return None
        _refuse_record_hosts(config)
        for name in ("host", "username"):
            if not values.get(name):
                raise SettingsError(f"ssh_tunnel is enabled but 'ssh_tunnel.{name}' is not set")
        key_text, password = values.get("private_key"), values.get("password")
        if not key_text and not password:
            raise SettingsError(
                "ssh_tunnel needs 'ssh_tunnel.private_key' or 'ssh_tunnel.password' to log in"
            )
        host_key, passphrase = values.get("host_key"), values.get("private_key_password")
        # paramiko is slow to import: only runs with a tunnel pay for it.
        from target_restapi.tunnel.keys import load_private_key, parse_host_key

        return cls(
            host=values["host"],
            port=int(values.get("port") or 22),
            username=values["username"],
            key=load_private_key(key_text, passphrase) if key_text else None,
            password=password or None,
            host_key=parse_host_key(host_key) if host_key else None,
        )


def _refuse_record_hosts(config: Mapping[str, Any]) -> None:
    """Records must not pick tunnel destinations: refuse allow_record_hosts anywhere."""
    allowing = ["the top level"] if config.get("allow_record_hosts") else []
    allowing += [
        f"streams.{name}"
        for name, entry in (config.get("streams") or {}).items()
        if (entry or {}).get("allow_record_hosts")
    ]
    if allowing:
        raise SettingsError(
            f"ssh_tunnel is enabled and allow_record_hosts is true ({', '.join(allowing)}): "
            "records could open forwards to any host the SSH server reaches; "
            "turn allow_record_hosts off or send without the tunnel"
        )


def tunnel_secrets(config: Mapping[str, Any]) -> list[str]:
    """The secret `ssh_tunnel` values, each line of the key as well, for the Redactor."""
    values = config.get("ssh_tunnel") or {}
    found = [values.get(name) for name in ("private_key", "private_key_password", "password")]
    key_lines = (values.get("private_key") or "").replace("\\n", "\n").splitlines()
    found += [line.strip() for line in key_lines if not line.startswith("-----")]
    return [value for value in found if value]
