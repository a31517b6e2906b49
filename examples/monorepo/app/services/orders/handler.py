"""The orders Lambda handler."""
from receipt_common import now, respond
from receipt_events import event


def handler(request, context):
    """Handles one orders request."""
    print(event("orders.request", at=now(), keys=sorted(request or {})))
    return respond(200, "orders ok")


if __name__ == "__main__":
    print(handler({}, None))
