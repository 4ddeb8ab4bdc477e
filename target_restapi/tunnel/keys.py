"""SSH key text and known_hosts lines, parsed with errors that never quote the key."""

from __future__ import annotations

import io
from collections.abc import Callable

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from target_restapi.errors import SettingsError

_KEY_CLASSES = (
    (rsa.RSAPrivateKey, paramiko.RSAKey),
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
)
# cryptography's PEM and OpenSSH loaders: (data, password) -> key
KeyLoader = Callable[[bytes, bytes | None], PrivateKeyTypes]


def load_private_key(text: str, password: str | None) -> paramiko.PKey:
    """Parse PEM or OpenSSH key text; errors say what is wrong without quoting the key.

    cryptography tells the cases apart (encrypted, wrong passphrase, unreadable), which
    paramiko's per-class loaders do not; paramiko then builds the key sshtunnel needs.
    """
    if "\\n" in text and "\n" not in text.strip():
        text = text.replace("\\n", "\n")  # a key pasted into one line of an env variable
    data = text.strip().encode() + b"\n"
    load: KeyLoader
    if b"OPENSSH PRIVATE KEY" in data:
        load = serialization.load_ssh_private_key
    else:
        load = serialization.load_pem_private_key
    try:
        loaded = load(data, password.encode() if password else None)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        loaded = _explain_key_failure(load, data, password)
    for crypto_class, key_class in _KEY_CLASSES:
        if isinstance(loaded, crypto_class):
            try:
                return key_class.from_private_key(io.StringIO(data.decode()), password)
            except (paramiko.SSHException, ValueError):
                break
    raise SettingsError(
        "ssh_tunnel.private_key cannot be used for the login; give an Ed25519, ECDSA or RSA "
        "key in OpenSSH format or traditional PEM (BEGIN RSA/EC PRIVATE KEY)"
    )


def _explain_key_failure(load: KeyLoader, data: bytes, password: str | None) -> PrivateKeyTypes:
    """Load the key without passphrase to learn why loading failed, and say so."""
    try:
        loaded = load(data, None)
    except TypeError:  # encrypted
        if password:
            raise SettingsError(
                "ssh_tunnel.private_key_password does not decrypt ssh_tunnel.private_key"
            ) from None
        raise SettingsError(
            "ssh_tunnel.private_key is encrypted; set ssh_tunnel.private_key_password"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SettingsError(
            "ssh_tunnel.private_key is not a readable private key; give the whole PEM or "
            "OpenSSH key text, BEGIN and END lines included"
        ) from None
    return loaded  # not encrypted: the passphrase given is not needed


def parse_host_key(line: str) -> paramiko.PKey:
    """The key of a `known_hosts` line; the host names in it are not needed."""
    fields = line.split()
    if len(fields) == 2:
        fields.insert(0, "*")
    try:
        entry = HostKeyEntry.from_line(" ".join(fields))
    except InvalidHostKey:
        entry = None
    if entry is None:
        raise SettingsError(
            "ssh_tunnel.host_key is not a known_hosts line; give `[host]:port type base64` "
            "as printed by `ssh-keyscan -p <port> <host>`"
        )
    return entry.key
