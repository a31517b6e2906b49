"""Shared helpers used by every demo handler."""


def respond(status: int, body: str) -> dict:
    """A Lambda proxy response."""
    return {"statusCode": status, "body": body}
