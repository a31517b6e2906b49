"""Structured events the handlers log."""
import json

import requests


def event(name: str, **fields) -> str:
    """One JSON log line; names the HTTP client the handlers share."""
    return json.dumps({"event": name, "client": requests.__version__, **fields}, sort_keys=True)
