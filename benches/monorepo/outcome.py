"""What one contender's run in one scenario produced, and the median over repeated runs."""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """Wall seconds, images updated and bytes sent to the daemon for one timed run."""

    wall: float
    updated: int
    sent_bytes: int
    # How `sent_bytes` was obtained (e.g. "contextBytes" or "docker progress").
    bytes_source: str = ""
    # Every round's wall seconds, for a median (the spread shows how noisy the machine was).
    rounds: tuple[float, ...] = ()


def median(runs: list[Outcome]) -> Outcome:
    """The per-field median of repeated runs (wall, images updated and bytes independently)."""
    return Outcome(
        wall=statistics.median(r.wall for r in runs),
        updated=round(statistics.median(r.updated for r in runs)),
        sent_bytes=round(statistics.median(r.sent_bytes for r in runs)),
        bytes_source=runs[0].bytes_source,
        rounds=tuple(r.wall for r in runs),
    )
