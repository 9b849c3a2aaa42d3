"""Handles S3 "object created" notifications, as a Lambda function triggered by S3 would."""

from urllib.parse import unquote_plus


def lambda_handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])  # S3 sends keys URL-encoded
        size = record["s3"]["object"].get("size")
        print(f"{record['eventName']}: s3://{bucket}/{key} ({size} bytes)")
