"""The bench's table (wall seconds, ratios against both loops, images updated, bytes sent to the
daemon) and the issue's targets with OK/MISSED."""
from __future__ import annotations

from dataclasses import dataclass

from outcome import Outcome

PULUMI, SEQ, PAR = "pulumi up", "sequential loop", "parallel loop"
CONTENDERS = (PULUMI, SEQ, PAR)
MIB = 1024 * 1024

# scenario -> contender -> median outcome
Results = dict[str, dict[str, Outcome]]


def human(n: int) -> str:
    """Bytes as MiB / KiB / B."""
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


def table(results: Results) -> str:
    """One row per scenario and contender."""
    head = (f"{'scenario':<16} {'contender':<16} {'wall s':>8} {'vs seq':>7} {'vs par':>7} {'updated':>8}  "
            f"{'sent to daemon':<30} rounds (s)")
    rows = [head, "-" * (len(head) + 8)]
    for scenario, by in results.items():
        for name in CONTENDERS:
            o = by[name]
            sent = f"{human(o.sent_bytes)} ({o.bytes_source})"
            rounds = " / ".join(f"{w:.1f}" for w in o.rounds) if len(o.rounds) > 1 else ""
            rows.append(
                f"{scenario:<16} {name:<16} {o.wall:8.2f} {o.wall / by[SEQ].wall:6.2f}x "
                f"{o.wall / by[PAR].wall:6.2f}x {o.updated:>8}  {sent:<30} {rounds}"
            )
    return "\n".join(rows)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets and whether this run met it."""

    text: str
    measured: str
    ok: bool

    def line(self) -> str:
        """`OK`/`MISSED`, the target and what was measured."""
        return f"  {'OK    ' if self.ok else 'MISSED'} {self.text:<52} measured {self.measured}"


def targets(results: Results, handler: str, package: str, cold: str, noop: str) -> list[Target]:
    """The issue's targets for `pulumi up`, judged on the median outcomes."""
    h, p, c, n = results[handler], results[package], results[cold], results[noop]

    def ratio(by: dict[str, Outcome], base: str) -> float:
        return by[PULUMI].wall / by[base].wall

    return [
        Target("one handler edited: 1 image updated", f"{h[PULUMI].updated}", h[PULUMI].updated == 1),
        Target("one handler edited: <= 1.0x the sequential loop", f"{ratio(h, SEQ):.2f}x", ratio(h, SEQ) <= 1.0),
        Target("one handler edited: <= 1 MiB sent", human(h[PULUMI].sent_bytes), h[PULUMI].sent_bytes <= MIB),
        Target("shared package edited: <= 0.9x the parallel loop", f"{ratio(p, PAR):.2f}x", ratio(p, PAR) <= 0.9),
        Target("cold: <= 0.9x the parallel loop", f"{ratio(c, PAR):.2f}x", ratio(c, PAR) <= 0.9),
        Target("no-op: <= 1.0x the parallel loop", f"{ratio(n, PAR):.2f}x", ratio(n, PAR) <= 1.0),
    ]
