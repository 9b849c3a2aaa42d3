"""A SAM template read as pipelined's Config: properties, events, intrinsics, errors at template lines."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from pipelined.cli import main
from pipelined.config import (
    ApiSource,
    DynamoDBStreamSource,
    EventBridgeSource,
    FunctionUrlSource,
    HttpApiSource,
    KinesisSource,
    ScheduleSource,
    SqsSource,
    load_config,
)
from pipelined.config.sam import convert_template, load_sam
from pipelined.errors import ConfigError
from tests.sam.support import FIXTURES

SAMPLES = ["hello-api", "sqs", "dynamodb", "s3", "schedule", "eventbridge"]


def _write(directory: Path, text: str, name: str = "template.yaml") -> Path:
    (directory / "src").mkdir(exist_ok=True)
    (directory / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _problems(path: Path, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as failed:
        load_sam(path, dict(o.split("=", 1) for o in overrides))
    return failed.value.problems


def test_lambda_guide_template_is_one_function_with_an_api_route() -> None:
    loaded = load_sam(FIXTURES / "hello-api" / "template.yaml")
    fn = loaded.config.functions["HelloWorldFunction"]
    assert fn.code == FIXTURES / "hello-api" / "hello_world"
    assert (fn.handler, fn.runtime, fn.timeout, fn.memory_mb) == ("app.lambda_handler", "python3.12", 3, 128)
    assert fn.events == [ApiSource(type="api", name="HelloWorld", path="/hello", method="get")]


def test_sqs_sample_maps_every_event_property() -> None:
    fn = load_sam(FIXTURES / "sqs" / "template.yaml").config.functions["OrderProcessor"]
    (event,) = fn.events
    assert isinstance(event, SqsSource)
    assert event.queue == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert (event.batch_size, event.maximum_batching_window, event.report_batch_item_failures) == (5, 1, True)
    assert event.filter_patterns == [{"body": {"kind": ["order"]}}]
    assert fn.environment == {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/orders"}


def test_parameters_conditions_and_sub_follow_the_overrides() -> None:
    template = FIXTURES / "schedule" / "template.yaml"
    default = load_sam(template).config.functions["ScheduledFunction"]
    assert default.memory_mb == 256
    assert default.events == [
        ScheduleSource(
            type="schedule",
            name="Tick",
            expression="rate(5 minutes)",
            input={"stage": "dev", "source": "schedule"},
        )
    ]
    prod = load_sam(template, {"Stage": "prod", "Rate": "rate(1 hour)"}).config.functions["ScheduledFunction"]
    assert prod.memory_mb == 512
    assert isinstance(prod.events[0], ScheduleSource) and prod.events[0].expression == "rate(1 hour)"
    assert prod.events[0].input == {"stage": "prod", "source": "schedule"}
    assert _problems(template, "Stage=test") == [
        f"{template}:9: Parameters.Stage: 'test' is not one of AllowedValues ['dev', 'prod']"
    ]


def test_unsupported_property_is_reported_once_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            Tracing: Active
          Api:
            Cors: "'*'"
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Tracing: PassThrough
              VpcConfig: {SubnetIds: [a]}
              Events:
                Topic:
                  Type: SNS
                  Properties: {Topic: arn:aws:sns:us-east-1:123456789012:t}
                Q:
                  Type: SQS
                  Properties: {Queue: arn:aws:sqs:us-east-1:123456789012:q, TumblingWindowInSeconds: 5}
          Role:
            Type: AWS::IAM::Role
    """,
    )
    assert main(["validate", "--sam", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: OK: 1 function, 1 event source (1 sqs)\n"
    left_out = "not supported (left out)"
    assert err.splitlines() == [
        f"{path}:5: Globals.Api: {left_out}: only Globals.Function is applied",
        f"{path}:14: Resources.Fn.Properties.VpcConfig: {left_out}: the function uses this machine's network",
        f"{path}:17: Resources.Fn.Properties.Events.Topic.Type: {left_out}: "
        "pipelined has no SNS event source",
        f"{path}:21: Resources.Fn.Properties.Events.Q.Properties.TumblingWindowInSeconds: {left_out}: "
        "pipelined has no tumbling windows",
        f"{path}:23: Resources.Role.Type: {left_out}: IAM: pipelined does not enforce permissions",
    ]


def test_tracing_active_exports_spans_only_with_an_otlp_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """
        Transform: AWS::Serverless-2016-10-31
        {metadata}
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {{CodeUri: src/, Handler: app.handler, Tracing: Active}}
        """
    path = _write(tmp_path, text.format(metadata=""))
    assert main(["validate", "--sam", str(path)]) == 0
    assert (
        "Tracing: not supported (left out): set Metadata.pipelined.tracing.otlp_endpoint"
        in capsys.readouterr().err
    )
    assert load_sam(path).config.functions["Fn"].tracing == "pass_through"
    metadata = "Metadata: {pipelined: {tracing: {otlp_endpoint: 'http://127.0.0.1:4318'}}}"
    path = _write(tmp_path, text.format(metadata=metadata))
    assert load_sam(path).config.functions["Fn"].tracing == "active"


def test_invalid_values_are_reported_at_their_template_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            Timeout: 1000
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Environment:
                Variables:
                  TABLE: !Ref Missing
              Events:
                Q:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Queue.Arn
                    BatchSize: 50
          Queue:
            Type: AWS::SQS::Queue
    """,
    )
    assert _problems(path) == [
        f"{path}:12: Resources.Fn.Properties.Environment.Variables.TABLE.Ref: "
        "!Ref Missing: no parameter or resource of that name in the template"
    ]
    path.write_text(path.read_text().replace("!Ref Missing", "!Ref Queue"))
    assert _problems(path) == [
        f"{path}:4: Globals.Function.Timeout: must be between 1s and 15m, got 1000s",
        f"{path}:6: Resources.Fn: Handler: required key is missing",
        f"{path}:18: Resources.Fn.Properties.Events.Q.Properties.BatchSize: a batch_size above 10 requires "
        "maximum_batching_window of at least 1s (as in AWS Lambda)",
    ]


def test_json_template_reads_as_the_yaml_one(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "sqs" / "src", tmp_path / "src")
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "OrdersQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders"}},
            "OrderProcessor": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "src/",
                    "Handler": "app.lambda_handler",
                    "Events": {
                        "OrdersEvent": {
                            "Type": "SQS",
                            "Properties": {"Queue": {"Fn::GetAtt": ["OrdersQueue", "Arn"]}, "BatchSize": 0},
                        }
                    },
                },
            },
        },
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template, indent=2))
    assert _problems(path) == [
        f"{path}:25: Resources.OrderProcessor.Properties.Events.OrdersEvent.Properties.BatchSize: "
        "must be between 1 and 10000, got 0"
    ]
    template["Resources"]["OrderProcessor"]["Properties"]["Events"]["OrdersEvent"]["Properties"][
        "BatchSize"
    ] = 10
    path.write_text(json.dumps(template, indent=2))
    (event,) = load_sam(path).config.functions["OrderProcessor"].events
    assert isinstance(event, SqsSource) and event.queue.endswith(":orders")


def test_function_properties_globals_layers_and_events(tmp_path: Path) -> None:
    (tmp_path / "layer" / "python").mkdir(parents=True)
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            Runtime: python3.12
            Environment:
              Variables: {STAGE: dev, SHARED: "1"}
        Resources:
          Libs:
            Type: AWS::Serverless::LayerVersion
            Properties: {ContentUri: layer/}
          Failures:
            Type: AWS::SQS::Queue
          Stream:
            Type: AWS::Kinesis::Stream
            Properties: {ShardCount: 1}
          Table:
            Type: AWS::DynamoDB::Table
            Properties:
              KeySchema: [{AttributeName: pk, KeyType: HASH}]
              AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: worker
              CodeUri: src/
              Handler: app.handler
              Layers: [!Ref Libs]
              Environment:
                Variables: {STAGE: prod}
              ReservedConcurrentExecutions: 4
              ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}
              EventInvokeConfig:
                MaximumRetryAttempts: 1
                MaximumEventAgeInSeconds: 120
                DestinationConfig:
                  OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
              FunctionUrlConfig: {AuthType: NONE}
              Events:
                Kin:
                  Type: Kinesis
                  Properties:
                    Stream: !GetAtt Stream.Arn
                    StartingPosition: AT_TIMESTAMP
                    StartingPositionTimestamp: 1700000000
                    ParallelizationFactor: 2
                Ddb:
                  Type: DynamoDB
                  Properties:
                    Stream: !GetAtt Table.StreamArn
                    StartingPosition: LATEST
                    MaximumRecordAgeInSeconds: 3600
                    DestinationConfig: {OnFailure: {Destination: !GetAtt Failures.Arn}}
                Web:
                  Type: HttpApi
                Cron:
                  Type: ScheduleV2
                  Properties:
                    ScheduleExpression: cron(0 12 * * ? *)
                    ScheduleExpressionTimezone: Europe/Berlin
                    State: DISABLED
                    RetryPolicy: {MaximumRetryAttempts: 0}
    """,
    )
    loaded = load_sam(path)
    fn = loaded.config.functions["worker"]
    assert fn.layers == [tmp_path / "layer" / "python"]
    assert fn.environment == {"STAGE": "prod", "SHARED": "1"}
    assert (fn.reserved_concurrency, fn.provisioned_concurrency, fn.isolation) == (4, 1, "process")
    assert (fn.async_.maximum_retry_attempts, fn.async_.maximum_event_age) == (1, 120)
    failures = "arn:aws:sqs:us-east-1:123456789012:Failures"
    assert (
        fn.async_.destinations.on_failure is not None
        and fn.async_.destinations.on_failure.destination == failures
    )
    kinesis, dynamodb, web, cron, url = fn.events
    assert isinstance(kinesis, KinesisSource) and kinesis.stream.endswith(":stream/Stream")
    assert kinesis.starting_position_timestamp is not None
    assert (
        kinesis.starting_position_timestamp.timestamp() == 1700000000 and kinesis.parallelization_factor == 2
    )
    assert isinstance(dynamodb, DynamoDBStreamSource) and dynamodb.table == "Table"
    assert dynamodb.maximum_record_age == 3600 and dynamodb.on_failure is not None
    assert isinstance(web, HttpApiSource) and (web.path, web.method) == ("/{proxy+}", "any")
    assert isinstance(cron, ScheduleSource) and (
        cron.timezone,
        cron.enabled,
        cron.maximum_retry_attempts,
    ) == ("Europe/Berlin", False, 0)
    assert isinstance(url, FunctionUrlSource)
    assert set(loaded.declared.queues) == {"Failures"} and loaded.declared.streams == {"Stream"}
    assert loaded.declared.tables["Table"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_eventbridge_rules_become_eventbridge_sources(capsys: pytest.CaptureFixture[str]) -> None:
    template = FIXTURES / "eventbridge" / "template.yaml"
    assert main(["validate", "--sam", str(template)]) == 0
    assert capsys.readouterr().err == ""
    rule = load_sam(template).config.functions["OrderEventsFunction"].events[0]
    assert isinstance(rule, EventBridgeSource) and rule.name == "OrderPlaced"
    assert rule.pattern == {"source": ["shop.orders"], "detail-type": ["OrderPlaced"]}


@pytest.mark.parametrize("sample", SAMPLES)
def test_converted_file_validates_as_the_same_config(
    sample: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / sample
    shutil.copytree(FIXTURES / sample, directory)
    template = directory / "template.yaml"
    assert main(["sam", "convert", str(template)]) == 0
    converted = directory / "pipeline.yaml"
    converted.write_text(capsys.readouterr().out)
    assert main(["validate", str(converted)]) == 0
    exclude = {"source_path"}
    assert load_config(converted).model_dump(exclude=exclude) == load_sam(template).config.model_dump(
        exclude=exclude
    )


def test_converted_file_says_where_each_value_came_from(capsys: pytest.CaptureFixture[str]) -> None:
    template = FIXTURES / "sqs" / "template.yaml"
    assert main(["sam", "convert", str(template), "--parameter-overrides", "BatchSize=7"]) == 0
    text = capsys.readouterr().out
    assert (
        "#   30: Resources.OrderProcessor.Properties.Policies: IAM: pipelined does not enforce permissions"
        in text
    )
    assert "  OrderProcessor:  # Resources.OrderProcessor (line 23)\n" in text
    assert "        batch_size: 7  # BatchSize (line 41)\n" in text
    assert '        filter_patterns: [{"body": {"kind": ["order"]}}]  # FilterCriteria (line 45)\n' in text


def test_usage_errors_name_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = FIXTURES / "sqs" / "template.yaml"
    assert main(["validate", "--sam", str(template), "--parameter-overrides", "Nope=1"]) == 2
    assert (
        capsys.readouterr().err
        == f"{template}:1: --parameter-overrides: the template has no parameter 'Nope'\n"
    )
    assert main(["validate", "--sam", str(template), "--parameter-overrides", "novalue"]) == 2
    assert "expected KEY=VALUE, got 'novalue'" in capsys.readouterr().err
    assert main(["validate", "--sam", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'missing.yaml'}: file not found\n"


def test_a_sam_template_given_as_a_pipelined_file_says_to_use_sam(capsys: pytest.CaptureFixture[str]) -> None:
    template = FIXTURES / "sqs" / "template.yaml"
    assert main(["validate", str(template)]) == 2
    assert capsys.readouterr().err == (
        f"{template}:2: an AWS SAM template, not a pipelined file: use --sam {template}\n"
    )


def test_converted_file_keeps_literal_dollar_braces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Environment:
                Variables:
                  TEMPLATE: !Sub "${!name} in ${AWS::Region}"
                  PLAIN: "${HOME}"
        """,
    )
    assert main(["sam", "convert", str(path)]) == 0
    converted = tmp_path / "pipeline.yaml"
    converted.write_text(capsys.readouterr().out)
    expected = {"TEMPLATE": "${name} in us-east-1", "PLAIN": "${HOME}"}
    assert load_config(converted).functions["Fn"].environment == expected
    assert load_sam(path).config.functions["Fn"].environment == expected


def test_eventbridge_mapping_gives_the_eventbridge_source_shape(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Bus:
            Type: AWS::Events::EventBus
            Properties: {Name: shop}
          Failed:
            Type: AWS::SQS::Queue
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Events:
                Placed:
                  Type: EventBridgeRule
                  Properties:
                    EventBusName: !Ref Bus
                    Pattern: {source: [shop.orders]}
                    InputTransformer:
                      InputPathsMap: {id: $.detail.id}
                      InputTemplate: '{"order": <id>}'
                    RetryPolicy: {MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 600}
                    DeadLetterConfig: {Arn: !GetAtt Failed.Arn}
                    Target: {Id: t}
        """,
    )
    conv = convert_template(path)
    assert conv.data["event_buses"] == {"shop": {}}
    assert conv.data["functions"]["Fn"]["events"] == [
        {
            "type": "eventbridge",
            "name": "Placed",
            "bus": "shop",
            "pattern": {"source": ["shop.orders"]},
            "input_transformer": {
                "input_paths_map": {"id": "$.detail.id"},
                "input_template": '{"order": <id>}',
            },
            "retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age": 600},
            "dead_letter": "arn:aws:sqs:us-east-1:123456789012:Failed",
        }
    ]
    assert [u.path[-1] for u in conv.unsupported] == ["Target"]


def test_api_resources_settings_are_listed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Api:
            Type: AWS::Serverless::Api
            Properties:
              StageName: Prod
              Cors: "'*'"
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Events:
                Get: {Type: Api, Properties: {Path: /x, Method: get, RestApiId: !Ref Api}}
        """,
    )
    left_out, one_gateway = (
        "not supported (left out)",
        "one gateway serves every route (see Metadata.pipelined.gateway)",
    )
    assert load_sam(path).unsupported() == [
        f"{path}:6: Resources.Api.Properties.StageName: {left_out}: {one_gateway}",
        f"{path}:7: Resources.Api.Properties.Cors: {left_out}: {one_gateway}",
        f"{path}:14: Resources.Fn.Properties.Events.Get.Properties.RestApiId: {left_out}: "
        "all routes are served by pipelined's one gateway",
    ]
