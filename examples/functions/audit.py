"""An EventBridge rule's target: OrderSent events of big orders, from the default event bus."""


def lambda_handler(event, context):
    order = event["detail"]
    print(f"audit: order {order['order']} of {order['amount']} ({event['detail-type']} from {event['source']})")
    return {"audited": order["order"]}
