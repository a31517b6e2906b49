"""The orders Lambda handler."""
from imagebuild_common import respond
from imagebuild_telemetry import event


def handler(request, context):
    """Handles one orders request."""
    print(event("orders.request", keys=sorted(request or {})))
    return respond(200, "orders ok")


if __name__ == "__main__":
    print(handler({}, None))
