"""An HTTP handler behind the gateway (an HTTP API route, payload 2.0): `curl http://127.0.0.1:8080/hello`.

Edit the greeting and save while `make example` runs: the next request answers with the new text.
"""

import json


def lambda_handler(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    body = {"message": f"hello, {name}", "path": event["rawPath"], "requestId": context.aws_request_id}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
