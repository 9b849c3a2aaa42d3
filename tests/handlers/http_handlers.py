"""Handlers behind the gateway's routes: plain proxy handlers, a powertools REST app, a powertools HTTP API
app and a FastAPI app behind Mangum."""

import base64
import os
import time

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from fastapi import FastAPI, HTTPException
from mangum import Mangum
from pydantic import BaseModel


def echo(event, context):
    """Returns the event it got, so a test can compare it key by key (payload 1.0 response shape)."""
    import json

    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Request-Id-Seen": context.aws_request_id},
        "multiValueHeaders": {"X-Multi": ["one", "two"]},
        "body": json.dumps(event),
    }


def echo_v2(event, context):
    """A 2.0 simple response: the event itself, as JSON."""
    return event


def cookies(event, context):
    return {
        "statusCode": 201,
        "headers": {"X-Seen-Cookies": ";".join(event.get("cookies", []))},
        "cookies": ["a=1; Path=/", "b=2; Max-Age=60"],
        "body": "made",
    }


def image(event, context):
    """Returns the request body (base64) flipped byte by byte, as an image/png."""
    data = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png", "X-In-Base64": str(event["isBase64Encoded"]).lower()},
        "body": base64.b64encode(bytes(reversed(data))).decode(),
        "isBase64Encoded": True,
    }


def fail(event, context):
    raise RuntimeError("the handler failed")


def malformed(event, context):
    return {"statusCode": "two hundred", "body": 5}


def slow(event, context):
    seconds = float((event.get("queryStringParameters") or {}).get("sleep", "1"))
    time.sleep(seconds)
    return {"statusCode": 200, "body": f"slept {seconds}"}


def version(event, context):
    return {"statusCode": 200, "body": os.environ.get("VERSION", "?")}


# --- aws-lambda-powertools ------------------------------------------------------------------------

rest_app = APIGatewayRestResolver()
PETS = {"1": {"id": "1", "name": "Rex"}}


@rest_app.get("/pets")
def list_pets():
    return {"pets": list(PETS.values())}


@rest_app.get("/pets/<pet_id>")
def get_pet(pet_id: str):
    if pet_id not in PETS:
        raise NotFoundError(f"no pet {pet_id}")
    return PETS[pet_id]


@rest_app.post("/pets")
def add_pet():
    pet = rest_app.current_event.json_body
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body={"created": pet})


def powertools_rest(event, context):
    return rest_app.resolve(event, context)


http_app = APIGatewayHttpResolver()


@http_app.get("/orders/<order_id>")
def get_order(order_id: str):
    return {"order": order_id, "q": http_app.current_event.get_query_string_value("q")}


@http_app.post("/orders")
def add_order():
    return Response(
        status_code=201, content_type=content_types.APPLICATION_JSON, body=http_app.current_event.json_body
    )


@http_app.get("/orders/<order_id>/missing")
def missing_order(order_id: str):
    raise NotFoundError(f"order {order_id} has nothing here")


def powertools_http(event, context):
    return http_app.resolve(event, context)


# --- FastAPI behind Mangum -----------------------------------------------------------------------

api = FastAPI()


class Item(BaseModel):
    name: str
    price: float


ITEMS: dict[int, Item] = {}


@api.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None):
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    return {"id": item_id, "item": ITEMS[item_id].model_dump(), "q": q}


@api.post("/items/{item_id}", status_code=201)
def create_item(item_id: int, item: Item):
    ITEMS[item_id] = item
    return {"id": item_id, "item": item.model_dump()}


@api.get("/teapot")
def teapot():
    raise HTTPException(status_code=418, detail="I'm a teapot")


fastapi_handler = Mangum(api, lifespan="off")
