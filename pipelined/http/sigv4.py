"""Verifying AWS Signature Version 4 on incoming requests, by recomputing it with botocore's own signer."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

from pipelined.config import ApiCredential

# AWS refuses a signature made more than 15 minutes before (or after) it receives the request.
MAX_SKEW = datetime.timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*"
)


class SignatureError(Exception):
    """A signature that is missing, malformed, unknown, wrong or expired; `code` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SignedRequest:
    """What botocore's signer reads from a request (method, URL, headers, body), as it was received."""

    method: str
    url: str
    headers: HTTPHeaders
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class _Verifier(SigV4Auth):  # type: ignore[misc]
    """botocore's signer, told which headers the client signed instead of choosing them itself."""

    def __init__(self, credentials: ReadOnlyCredentials, service: str, region: str, signed: Sequence[str]):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: SignedRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or [""]:
                headers[name] = value
        return headers


class SigV4Verifier:
    """Checks requests against the configured credentials; returns the caller's credential name."""

    def __init__(self, credentials: Sequence[ApiCredential], services: frozenset[str]) -> None:
        self._by_key = {c.access_key_id: c for c in credentials}
        # The signing names of the APIs served (e.g. "lambda"); the credential scope must name one.
        self._services = services

    def verify(
        self,
        method: str,
        host: str,
        raw_path: str,
        headers: Mapping[str, str] | Any,
        body: bytes,
        now: datetime.datetime | None = None,
    ) -> str:
        """The name of the credential that signed the request; SignatureError if none did."""
        authorization = headers.get("Authorization")
        if not authorization:
            raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTHORIZATION.fullmatch(authorization.strip())
        if match is None:
            raise SignatureError(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
            )
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise SignatureError(
                "IncompleteSignatureException", f"Credential is malformed: {match['credential']}"
            )
        access_key, day, region, service, _ = parts
        credential = self._by_key.get(access_key)
        if credential is None:
            raise SignatureError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        if service not in self._services:
            raise SignatureError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{'/'.join(sorted(self._services))}'.",
            )
        stamp = headers.get("X-Amz-Date") or ""
        try:
            signed_at = datetime.datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=datetime.UTC)
        except ValueError:
            raise SignatureError(
                "IncompleteSignatureException", "X-Amz-Date header is missing or malformed"
            ) from None
        if not stamp.startswith(day):
            raise SignatureError("InvalidSignatureException", "Credential date does not match X-Amz-Date.")
        current = now or datetime.datetime.now(datetime.UTC)
        if signed_at < current - MAX_SKEW:
            raise SignatureError(
                "InvalidSignatureException",
                f"Signature expired: {stamp} is now earlier than "
                f"{(current - MAX_SKEW).strftime(SIGV4_TIMESTAMP)} "
                f"({current.strftime(SIGV4_TIMESTAMP)} - 15 min.)",
            )
        if signed_at > current + MAX_SKEW:
            raise SignatureError(
                "InvalidSignatureException",
                f"Signature not yet current: {stamp} is still later than "
                f"{(current + MAX_SKEW).strftime(SIGV4_TIMESTAMP)} "
                f"({current.strftime(SIGV4_TIMESTAMP)} + 15 min.)",
            )
        declared = headers.get("X-Amz-Content-SHA256")
        if declared and declared != UNSIGNED_PAYLOAD and declared != hashlib.sha256(body).hexdigest():
            raise SignatureError(
                "InvalidSignatureException", "The provided payload hash does not match the body."
            )
        signed = match["signed"].lower().split(";")
        request_headers = HTTPHeaders()
        for name in signed:
            for value in headers.getall(name, ()) if hasattr(headers, "getall") else [headers.get(name)]:
                if value is not None:
                    request_headers[name] = value
        request = SignedRequest(method, f"http://{host}{raw_path}", request_headers, body)
        request.context["timestamp"] = stamp
        signer = _Verifier(
            ReadOnlyCredentials(credential.access_key_id, credential.secret_access_key, None),
            service,
            region,
            signed,
        )
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise SignatureError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. "
                "Consult the service documentation for details.",
            )
        return credential.name
