"""Structured log lines for the demo handlers."""
import json


def event(name: str, **fields) -> str:
    """One JSON log line."""
    return json.dumps({"event": name, **fields}, sort_keys=True)
