"""The payments Lambda handler."""
from imagebuild_common import respond
from imagebuild_telemetry import event


def handler(request, context):
    """Handles one payments request."""
    print(event("payments.request", keys=sorted(request or {})))
    return respond(200, "payments ok")


if __name__ == "__main__":
    print(handler({}, None))
