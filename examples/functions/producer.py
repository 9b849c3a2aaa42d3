"""Feeds the example pipeline: sends an order to the queue and uploads a report (boto3, as on Lambda).

In dev mode AWS_ENDPOINT_URL points boto3 at the local server, so this runs unchanged.
"""

import json
import os

import boto3

sqs = boto3.client("sqs")
s3 = boto3.client("s3")
COUNT = 0


def lambda_handler(event, context):
    global COUNT
    COUNT += 1
    order = {"order": COUNT, "amount": COUNT * 10, "fail": COUNT % 4 == 0}
    url = sqs.get_queue_url(QueueName=os.environ["QUEUE"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(order))
    key = f"incoming/report {COUNT}.txt"
    s3.put_object(Bucket=os.environ["BUCKET"], Key=key, Body=f"report {COUNT} at {event['time']}\n".encode())
    print(f"sent order {COUNT} and uploaded s3://{os.environ['BUCKET']}/{key}")
    return {"order": COUNT}
