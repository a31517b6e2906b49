"""The payments Lambda handler."""
from receipt_common import now, respond
from receipt_events import event


def handler(request, context):
    """Handles one payments request."""
    print(event("payments.request", at=now(), keys=sorted(request or {})))
    return respond(200, "payments ok")


if __name__ == "__main__":
    print(handler({}, None))
