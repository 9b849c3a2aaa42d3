"""Processes orders from an SQS queue, reporting the ones it cannot handle as batch item failures."""

import json


def lambda_handler(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        attempt = record["attributes"]["ApproximateReceiveCount"]
        if order.get("fail"):
            print(
                f"order {order['order']}: failing on purpose (attempt {attempt}); it comes back after a backoff"
            )
            failures.append({"itemIdentifier": record["messageId"]})
        else:
            print(f"order {order['order']}: {order.get('amount')} processed (attempt {attempt})")
    return {"batchItemFailures": failures}
