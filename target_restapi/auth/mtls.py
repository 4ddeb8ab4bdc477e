"""Client certificates for mutual TLS: checked at start-up, handed to requests as files.

requests (through ssl) reads a certificate and its key only from files, so PEM text
given in the settings is written once to a private temporary folder, removed at the end.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from target_restapi.errors import SettingsError

PEM_MARK = "-----BEGIN "
PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END [A-Z ]*PRIVATE KEY-----", re.S
)


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A checked certificate and key, each a file path or PEM text; `key` None: in `cert`."""

    cert: str
    key: str | None = field(repr=False)

    @classmethod
    def from_settings(cls, cert: str | None, key: str | None, where: str) -> ClientCert | None:
        """Check `client_cert` and `client_key`: readable, PEM, unencrypted, a matching pair."""
        if not cert:
            if key:
                raise SettingsError(f"{where}: setting 'client_key' needs 'client_cert' too")
            return None
        cert, key = _unescape(cert), _unescape(key) if key else None
        cert_pem = _pem(cert, "client_cert", where)
        key_pem = _pem(key, "client_key", where) if key else cert_pem
        _check_pair(cert_pem, key_pem, "client_key" if key else "client_cert", where)
        return cls(cert, key)


def _unescape(value: str) -> str:
    """PEM text pasted into one line of an environment variable: escaped line breaks."""
    if PEM_MARK in value and "\\n" in value and "\n" not in value.strip():
        return value.replace("\\n", "\n")
    return value


def _pem(value: str, name: str, where: str) -> bytes:
    """The PEM bytes of a setting that is PEM text or names a file."""
    if PEM_MARK in value:
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError:
        raise SettingsError(
            f"{where}: setting '{name}' is neither PEM text nor a readable file"
        ) from None


def _check_pair(cert_pem: bytes, key_pem: bytes, key_from: str, where: str) -> None:
    """A PEM certificate and the unencrypted private key of its public key."""
    from cryptography import x509  # slow to import: only runs with a certificate pay for it
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise SettingsError(
            f"{where}: setting 'client_cert' holds no PEM certificate (BEGIN CERTIFICATE)"
        ) from None
    try:
        private_key = serialization.load_pem_private_key(key_pem, None)
    except TypeError:
        raise SettingsError(
            f"{where}: the key in '{key_from}' is encrypted; give it unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SettingsError(
            f"{where}: setting '{key_from}' holds no readable PEM private key; give the "
            "whole key, BEGIN and END lines included"
        ) from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certificate.public_key().public_bytes(*spki) != private_key.public_key().public_bytes(*spki):
        raise SettingsError(f"{where}: the key in '{key_from}' does not belong to 'client_cert'")


def key_secrets(*values: str | None) -> list[str]:
    """Each line of private key text found in `values`, for the Redactor."""
    found = []
    for value in values:
        for block in PRIVATE_KEY_BLOCK.findall(_unescape(value or "")):
            found += [line.strip() for line in block.splitlines() if line.strip()]
    return found


class CertFiles:
    """What requests' `cert` takes for each certificate; PEM text written once to files."""

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._files: dict[ClientCert, str | tuple[str, str]] = {}

    def files(self, cert: ClientCert | None) -> str | tuple[str, str] | None:
        """A file holding both, or (certificate file, key file); None without a certificate."""
        if cert is None:
            return None
        if cert not in self._files:
            cert_file = self._file(cert.cert, "cert.pem")
            self._files[cert] = (
                cert_file if cert.key is None else (cert_file, self._file(cert.key, "key.pem"))
            )
        return self._files[cert]

    def close(self) -> None:
        """Remove the files written."""
        if self._folder is not None:
            self._folder.cleanup()

    def _file(self, value: str, name: str) -> str:
        if PEM_MARK not in value:
            return value  # a path already
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="target-restapi-")  # mode 0700
        path = Path(self._folder.name) / f"{len(self._files)}-{name}"
        path.touch(mode=0o600)
        path.write_text(value)
        return str(path)
