"""The notifications Lambda handler."""
from receipt_common import now, respond
from receipt_events import event


def handler(request, context):
    """Handles one notifications request."""
    print(event("notifications.request", at=now(), keys=sorted(request or {})))
    return respond(200, "notifications ok")


if __name__ == "__main__":
    print(handler({}, None))
