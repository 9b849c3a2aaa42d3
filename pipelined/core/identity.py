"""Who a function is: its name, account, region and ARN, and the ids Lambda gives each invocation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

# The account id pipelined uses when nothing else names one (what moto and LocalStack accept too).
DEFAULT_ACCOUNT_ID = "000000000000"
# Every invocation runs the function's one version, as an unpublished Lambda function does.
VERSION = "$LATEST"


def function_arn(region: str, account: str, name: str) -> str:
    """arn:aws:lambda:REGION:ACCOUNT:function:NAME."""
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def role_arn(account: str, name: str) -> str:
    """arn:aws:iam::ACCOUNT:role/NAME."""
    return f"arn:aws:iam::{account}:role/{name}"


def rule_arn(region: str, account: str, name: str) -> str:
    """arn:aws:events:REGION:ACCOUNT:rule/NAME."""
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def parse_arn(arn: str) -> dict[str, str]:
    """Split `arn:partition:service:region:account:resource` into its named parts."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return dict(zip(("arn", "partition", "service", "region", "account", "resource"), parts, strict=True))


def new_request_id() -> str:
    """A random (version 4) UUID string, like Lambda's request ids, without uuid.UUID's overhead."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def new_log_stream_name() -> str:
    """A log stream name as Lambda makes one per execution environment: `YYYY/MM/DD/[$LATEST]hex`."""
    return time.strftime("%Y/%m/%d/[$LATEST]") + os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class FunctionIdentity:
    """A function's name, where it lives and the limits its context reports."""

    name: str
    region: str
    account: str = DEFAULT_ACCOUNT_ID
    memory_mb: int = 128
    timeout: float = 3.0
    log_stream: str = ""
    # The execution role (`role:`); None: the function has none, and ARNs name `role/NAME`.
    role: str | None = None

    @property
    def arn(self) -> str:
        """The function's unqualified ARN."""
        return function_arn(self.region, self.account, self.name)

    @property
    def role_arn(self) -> str:
        """The execution role's ARN: the configured `role`, else arn:aws:iam::ACCOUNT:role/NAME."""
        return self.role or role_arn(self.account, self.name)

    @property
    def log_group(self) -> str:
        """/aws/lambda/NAME."""
        return f"/aws/lambda/{self.name}"
