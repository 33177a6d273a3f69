"""The claims scorecard: each paper claim next to our number, its tolerance and a verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

@dataclass
class Claim:
    """One checkable statement of a paper and what our runs say about it.

    ``target`` and ``tolerance`` define the accepted interval [target − tol, target + tol] for
    ``ours``; a NaN ``ours`` (the grid lacks the runs) gives ``not tested``.
    """

    claim_id: str
    statement: str
    paper_value: str
    source: str  # trust marker of the reference: paper, fig, nb, derived …
    target: float
    tolerance: float
    ours: float
    ours_detail: str = ""
    preset: str = ""
    deviations: str = ""
    verdict: str = field(init=False)

    def __post_init__(self):
        if self.ours is None or not math.isfinite(self.ours):
            self.verdict = "not tested"
        else:
            self.verdict = "pass" if abs(self.ours - self.target) <= self.tolerance else "fail"


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims])


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A compact Markdown view: claim, paper, ours, tolerance, verdict, then deviations."""
    lines = [f"# {title}", "", "| claim | paper | ours | accepted | verdict |", "|---|---|---|---|---|"]
    for row in table.itertuples():
        accepted = f"{row.target:.3g} ± {row.tolerance:.3g}"
        ours = "—" if not math.isfinite(row.ours) else f"{row.ours:.3g}"
        lines.append(
            f"| {row.statement} | {row.paper_value} ({row.source}) | {ours} {row.ours_detail} "
            f"| {accepted} | **{row.verdict}** |"
        )
    presets = ", ".join(sorted(set(table["preset"])))
    lines += ["", f"Preset: {presets}."]
    notes = sorted({d for d in table["deviations"] if d})
    if notes:
        lines += ["", "Deviations from the paper's protocol:"] + [f"- {d}" for d in notes]
    return "\n".join(lines) + "\n"
