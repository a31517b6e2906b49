"""Helpers every handler shares: responses and timestamps."""
import json
from datetime import datetime

from dateutil import tz


def respond(status: int, body: str) -> dict:
    """A Lambda proxy response."""
    return {"statusCode": status, "body": json.dumps({"message": body})}


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(tz.UTC).isoformat()
