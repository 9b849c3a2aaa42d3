"""Handlers that accept only their event type: powertools' Parser validates the event against its model.

Each returns what it parsed, so a test sees the handler took the event as the type it expects.
"""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    DynamoDBStreamModel,
    EventBridgeModel,
    KinesisDataStreamModel,
    S3Model,
    SqsModel,
)


@event_parser(model=SqsModel)
def sqs(event, context):
    return {"bodies": [r.body for r in event.Records]}


@event_parser(model=S3Model)
def s3(event, context):
    return {"objects": [f"{r.s3.bucket.name}/{r.s3.object.key}" for r in event.Records]}


@event_parser(model=DynamoDBStreamModel)
def dynamodb(event, context):
    return {"new_images": [r.dynamodb.NewImage for r in event.Records]}


@event_parser(model=KinesisDataStreamModel)
def kinesis(event, context):
    return {"data": [r.kinesis.data.decode() for r in event.Records]}


@event_parser(model=EventBridgeModel)
def schedule(event, context):
    return {"detail_type": event.detail_type, "source": event.source}


@event_parser(model=EventBridgeModel)
def eventbridge(event, context):
    return {"detail_type": event.detail_type, "source": event.source, "detail": event.detail}


@event_parser(model=APIGatewayProxyEventModel)
def api(event, context):
    return {"method": event.httpMethod, "path": event.path, "body": event.body}


@event_parser(model=APIGatewayProxyEventV2Model)
def http_api(event, context):
    return {"method": event.requestContext.http.method, "path": event.rawPath, "body": event.body}
