"""The Lambda API's settings: the `api:` section (listener, credentials) and, per function, who may call
it (`permissions`) and how its asynchronous invocations are retried and where they are recorded (`async`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipelined.config.types import (
    ARN_PARTITION,
    QUEUE_ARN,
    QUEUE_URL,
    TOPIC_ARN,
    ConfigModel,
    Duration,
    FieldValueError,
    matches,
    split_listen,
)

DEFAULT_API_LISTEN = "127.0.0.1:9001"
# A function name (as `function:NAME`) or a Lambda function ARN, as PutFunctionEventInvokeConfig takes.
_FUNCTION_REF = (
    rf"function:[A-Za-z0-9_-]{{1,64}}"
    rf"|{ARN_PARTITION}:lambda:[a-z0-9-]+:\d{{12}}:function:[A-Za-z0-9_-]{{1,64}}"
)


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CredentialName = Annotated[
    str, AfterValidator(matches(r"[A-Za-z0-9_.@-]{1,64}", "1-64 letters, digits or _.@-"))
]


class ApiCredential(ConfigModel):
    """One access key the API accepts: requests signed with it (SigV4) act as `name`."""

    name: CredentialName
    access_key_id: Annotated[str, AfterValidator(matches(r"[A-Za-z0-9]{4,128}", "letters and digits"))]
    secret_access_key: str = Field(min_length=1)


class ApiConfig(ConfigModel):
    """The Lambda API listener (`listen: null` turns it off) and the credentials it verifies."""

    listen: str | None = DEFAULT_API_LISTEN
    credentials: list[ApiCredential] = Field(default_factory=list)
    # Events accepted by `Event` invokes and not yet finished, all functions together.
    max_queued_events: int = Field(default=100_000, ge=1)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @field_validator("credentials")
    @classmethod
    def _unique(cls, credentials: list[ApiCredential]) -> list[ApiCredential]:
        for field in ("name", "access_key_id"):
            seen: dict[str, int] = {}
            for index, credential in enumerate(credentials):
                value = getattr(credential, field)
                if value in seen:
                    raise FieldValueError(
                        (index, field), f"duplicate {field} (also credentials[{seen[value]}])"
                    )
                seen[value] = index
        return credentials

    @model_validator(mode="after")
    def _unsigned_only_on_loopback(self) -> ApiConfig:
        if self.listen is not None and not self.credentials and not is_loopback(self.host):
            raise FieldValueError(
                ("listen",),
                f"{self.listen} is not a loopback address: configure api.credentials so that callers "
                "must sign their requests, or listen on 127.0.0.1",
            )
        return self

    @property
    def host(self) -> str:
        assert self.listen is not None
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        assert self.listen is not None
        return split_listen(self.listen)[1]


# --- per function ----------------------------------------------------------------------------------


class Permission(ConfigModel):
    """One statement of a function's resource policy: `principal` (a credential name or "*") may `action`."""

    principal: str
    action: Literal["lambda:InvokeFunction", "lambda:GetFunction", "lambda:*"] = "lambda:InvokeFunction"

    def allows(self, principal: str | None, action: str) -> bool:
        """Whether this statement lets `principal` (None: an unsigned caller) do `action`."""
        return self.principal in ("*", principal) and self.action in (action, "lambda:*")


class AsyncDestination(ConfigModel):
    """Where an asynchronous invocation's record goes: sqlite, SQS, SNS, or a function (`function:NAME`)."""

    destination: Annotated[
        str,
        AfterValidator(
            matches(
                f"sqlite|{QUEUE_URL}|{QUEUE_ARN}|{TOPIC_ARN}|{_FUNCTION_REF}",
                "'sqlite', an SQS queue URL or ARN, an SNS topic ARN, or 'function:NAME' / a function ARN",
            )
        ),
    ]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"destination": data} if isinstance(data, str) else data

    @property
    def kind(self) -> Literal["sqlite", "sqs", "sns", "function"]:
        if self.destination == "sqlite":
            return "sqlite"
        if re.fullmatch(_FUNCTION_REF, self.destination):
            return "function"
        return "sns" if re.fullmatch(TOPIC_ARN, self.destination) else "sqs"

    @property
    def function_name(self) -> str:
        """The name of the function a `function` destination names."""
        return self.destination.rpartition(":")[2]


class AsyncDestinations(ConfigModel):
    """Lambda's DestinationConfig for asynchronous invocations."""

    on_success: AsyncDestination | None = None
    # None: the function's `on_failure`, else the local dead-letter store (nothing is dropped silently).
    on_failure: AsyncDestination | None = None


class AsyncInvokeConfig(ConfigModel):
    """PutFunctionEventInvokeConfig's settings, plus the delays between retries."""

    maximum_retry_attempts: int = Field(default=2, ge=0, le=2)
    maximum_event_age: Duration = Field(default=21600.0, ge=60, le=21600)
    # Lambda waits about a minute, then two, between attempts; the last delay repeats if there are fewer.
    retry_delays: list[Duration] = Field(default_factory=lambda: [60.0, 120.0], min_length=1)
    destinations: AsyncDestinations = AsyncDestinations()

    def retry_delay(self, retry: int) -> float:
        """The wait before retry number `retry` (1 is the first retry)."""
        return self.retry_delays[min(retry, len(self.retry_delays)) - 1]
