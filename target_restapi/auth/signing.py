"""HMAC request signatures, as webhook receivers check them: `sha256=<hex digest>`.

A requests auth applied after the credentials, on the prepared request, so it signs the
exact bytes that go out: compressed when the body is, streamed when it is a file.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import IO

from requests import PreparedRequest
from requests.auth import AuthBase

from target_restapi.auth.settings import HmacSigning

CHUNK_BYTES = 1024 * 1024


class HmacSigner(AuthBase):
    """Sets the signature header to `sha256=` and the HMAC-SHA256 of the body."""

    def __init__(self, signing: HmacSigning) -> None:
        self._key = signing.secret.encode()
        self._header = signing.header

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Sign the body about to be sent (none: the empty body)."""
        request.headers[self._header] = "sha256=" + self.digest(request.body)
        return request

    def digest(self, body: bytes | str | IO[bytes] | None) -> str:
        """Hex HMAC of bytes, text (UTF-8) or a file read in chunks and then rewound."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        if isinstance(body, str):
            body = body.encode()
        if body is None or isinstance(body, bytes):
            mac.update(body or b"")
        else:
            start = body.tell()
            while chunk := body.read(CHUNK_BYTES):
                mac.update(chunk)
            body.seek(start)
        return mac.hexdigest()
