"""Feeds the example pipeline: sends an order to the queue, uploads a report and publishes an event.

In dev mode AWS_ENDPOINT_URL points boto3 at the local server, so this runs unchanged; PutEvents goes to
pipelined's own event bus, on the daemon's API listener (EVENTS_ENDPOINT).
"""

import json
import os

import boto3

sqs = boto3.client("sqs")
s3 = boto3.client("s3")
events = boto3.client("events", endpoint_url=os.environ["EVENTS_ENDPOINT"])
COUNT = 0


def lambda_handler(event, context):
    global COUNT
    COUNT += 1
    order = {"order": COUNT, "amount": COUNT * 10, "fail": COUNT % 4 == 0}
    url = sqs.get_queue_url(QueueName=os.environ["QUEUE"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(order))
    key = f"incoming/report {COUNT}.txt"
    s3.put_object(Bucket=os.environ["BUCKET"], Key=key, Body=f"report {COUNT} at {event['time']}\n".encode())
    entry = {"Source": "example.orders", "DetailType": "OrderSent", "Detail": json.dumps(order)}
    events.put_events(Entries=[entry])
    print(f"sent order {COUNT}, uploaded s3://{os.environ['BUCKET']}/{key} and published OrderSent")
    return {"order": COUNT}
