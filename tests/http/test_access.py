"""Who may call the Lambda API: SigV4 signatures checked against api.credentials, per-function permissions."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from tests.http.support import lambda_client
from tests.support import DaemonProcess, run_cli, write_config

CREDENTIALS = [
    {"name": "alice", "access_key_id": "AKIAALICE", "secret_access_key": "${ALICE_SECRET}"},
    {"name": "bob", "access_key_id": "AKIABOB", "secret_access_key": "bob-secret"},
]
FUNCTIONS = {
    "open": {"handler": "api_handlers.noop"},
    "private": {
        "handler": "api_handlers.noop",
        "permissions": [
            {"principal": "alice", "action": "lambda:*"},
            {"principal": "bob", "action": "lambda:InvokeFunction"},
        ],
    },
}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("access")
    config = write_config(directory, FUNCTIONS)
    text = config.read_text().replace("api:\n", "api:\n  credentials: " + json.dumps(CREDENTIALS) + "\n", 1)
    config.write_text(text)
    process = DaemonProcess(config, {"ALICE_SECRET": "alice-secret"}).start()
    yield process
    process.stop()


def test_signed_callers_are_served_and_wrong_or_missing_signatures_refused(signed: DaemonProcess) -> None:
    assert lambda_client(signed, "AKIAALICE", "alice-secret").invoke(FunctionName="open")["StatusCode"] == 200
    cases = {
        "InvalidSignatureException": lambda_client(signed, "AKIAALICE", "not-the-secret"),
        "UnrecognizedClientException": lambda_client(signed, "AKIAMALLORY", "alice-secret"),
        "MissingAuthenticationTokenException": lambda_client(signed, signature_version=UNSIGNED),
    }
    for code, client in cases.items():
        with pytest.raises(client.exceptions.ClientError) as refused:
            client.invoke(FunctionName="open")
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert signed.metric("pipelined_api_requests_denied_total", reason="signature") == 3


def test_an_expired_signature_is_refused(signed: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    client = lambda_client(signed, "AKIAALICE", "alice-secret")
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.invoke(FunctionName="open")
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert refused.value.response["Error"]["Message"].startswith("Signature expired: ")


def test_permissions_decide_who_may_invoke_or_read_a_function(signed: DaemonProcess) -> None:
    alice = lambda_client(signed, "AKIAALICE", "alice-secret")
    bob = lambda_client(signed, "AKIABOB", "bob-secret")
    assert alice.invoke(FunctionName="private")["StatusCode"] == 200
    assert alice.get_function(FunctionName="private")["Configuration"]["FunctionName"] == "private"
    assert bob.invoke(FunctionName="private", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(bob.exceptions.ClientError) as denied:
        bob.get_function(FunctionName="private")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "bob is not authorized to perform: lambda:GetFunction" in denied.value.response["Error"]["Message"]
    # Without permissions, a function may be called by every configured credential.
    assert bob.get_function(FunctionName="open")["Configuration"]["FunctionName"] == "open"
    assert (
        signed.metric("pipelined_api_requests_denied_total", operation="GetFunction", reason="permission")
        == 1
    )


def test_validate_refuses_an_unsigned_api_on_a_non_loopback_address(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": {"handler": "api_handlers.noop"}}, api={"listen": "0.0.0.0:9001"})
    result = run_cli("validate", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "api.listen: 0.0.0.0:9001 is not a loopback address: configure api.credentials" in result.stderr
    unknown = write_config(
        tmp_path, {"f": {"handler": "api_handlers.noop", "permissions": [{"principal": "carol"}]}}
    )
    result = run_cli("validate", str(unknown))
    assert result.returncode == 2
    assert "functions.f.permissions[0].principal: no credential named 'carol'" in result.stderr


def test_boto3_default_session_signs_requests_the_daemon_accepts(signed: DaemonProcess) -> None:
    session = boto3.Session(
        aws_access_key_id="AKIABOB", aws_secret_access_key="bob-secret", region_name="eu-west-1"
    )
    client = session.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{signed.api_port}",
        config=Config(retries={"total_max_attempts": 1}),
    )
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert names == ["open", "private"]
