"""A function's execution role: the daemon assumes it with STS and hands the function its credentials.

Lambda gives a function its execution role's temporary credentials in AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. pipelined does the same for a function with `role`:
`RoleCredentials` calls AssumeRole once, shares the answer among all invocations, and calls it again
well before the credentials expire. Worker processes get the credentials in their environment when
they start (so module-level clients see them, as on Lambda) and are replaced before the credentials
expire (functions/process/pool.py); inline invocations get them through the environment overlay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelined.aws import AwsClients, describe
from pipelined.core.lambda_errors import LambdaError
from pipelined.errors import PipelinedError

log = logging.getLogger("pipelined.credentials")

# A worker whose credentials expire within this many seconds is replaced before its next invocation.
WORKER_MARGIN = 300.0
# New credentials are fetched this long before the old ones expire, so a new worker always gets
# credentials that outlive WORKER_MARGIN by minutes.
REFRESH_MARGIN = 2 * WORKER_MARGIN
# The errorType of an invocation whose function's role cannot be assumed.
ERROR_TYPE = "Runtime.AssumeRoleFailed"


class RoleError(PipelinedError):
    """The function's execution role could not be assumed; the message says which role and why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """One set of temporary credentials, as the environment variables a function reads them from."""

    variables: Mapping[str, str]
    # time.monotonic() at which they expire.
    expires: float

    def expiring(self, margin: float = WORKER_MARGIN) -> bool:
        """True when they expire within `margin` seconds."""
        return self.expires - time.monotonic() < margin


def expiring(expires: float | None) -> bool:
    """Whether a worker started with credentials expiring at `expires` (monotonic) must be replaced."""
    return expires is not None and expires - time.monotonic() < WORKER_MARGIN


def role_error(exc: RoleError) -> LambdaError:
    """The invocation error for a role that cannot be assumed."""
    return LambdaError(ERROR_TYPE, str(exc))


class RoleCredentials:
    """The credentials of one function's execution role, assumed on first use and refreshed early."""

    def __init__(
        self,
        role_arn: str,
        session_name: str,
        aws: Callable[[], AwsClients],
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self.role_arn = role_arn
        self.session_name = session_name
        self._aws = aws
        self._refresh_margin = refresh_margin
        self._current: Credentials | None = None
        self._lock = asyncio.Lock()
        self._last_error: str | None = None

    async def get(self) -> Credentials:
        """Credentials valid for a while yet; RoleError when the role cannot be assumed."""
        current = self._current
        if current is not None and not current.expiring(self._refresh_margin):
            return current
        # One AssumeRole for all the invocations that find the credentials stale at once.
        async with self._lock:
            current = self._current
            if current is None or current.expiring(self._refresh_margin):
                current = self._current = await self._assume()
        return current

    async def _assume(self) -> Credentials:
        try:
            sts = await self._aws().client("sts")
            response = await sts.assume_role(RoleArn=self.role_arn, RoleSessionName=self.session_name)
            issued = response["Credentials"]
            expiration = issued["Expiration"]
            if isinstance(expiration, str):
                expiration = datetime.fromisoformat(expiration)
            lifetime = (expiration - datetime.now(UTC)).total_seconds()
            variables = {
                "AWS_ACCESS_KEY_ID": str(issued["AccessKeyId"]),
                "AWS_SECRET_ACCESS_KEY": str(issued["SecretAccessKey"]),
                "AWS_SESSION_TOKEN": str(issued["SessionToken"]),
            }
        except Exception as exc:
            message = f"cannot assume role {self.role_arn}: {describe(exc)}"
            # One line per distinct failure, not one per invocation of a function that keeps failing.
            if message != self._last_error:
                log.error("%s: %s", self.session_name, message)
                self._last_error = message
            raise RoleError(message) from exc
        if self._last_error is not None:
            log.info("%s: assumed role %s", self.session_name, self.role_arn)
            self._last_error = None
        return Credentials(variables, time.monotonic() + lifetime)


async def worker_credentials(role: RoleCredentials | None) -> Credentials | LambdaError | None:
    """What a new worker starts with: the role's credentials, the error assuming it, or None (no role)."""
    if role is None:
        return None
    try:
        return await role.get()
    except RoleError as exc:
        return role_error(exc)
