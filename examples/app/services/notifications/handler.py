"""The notifications Lambda handler."""
from imagebuild_common import respond
from imagebuild_telemetry import event


def handler(request, context):
    """Handles one notifications request."""
    print(event("notifications.request", keys=sorted(request or {})))
    return respond(200, "notifications ok")


if __name__ == "__main__":
    print(handler({}, None))
