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
    notes = sorted({d for d in table["deviations"].fillna("") if d})
    if notes:
        lines += ["", "Deviations from the paper's protocol:"] + [f"- {d}" for d in notes]
    return "\n".join(lines) + "\n"


def scorecard_markdown(table: pd.DataFrame) -> str:
    """Every study's claims in one page: a count per study, then each study's table."""
    lines = ["# Claims scorecard", "", "| study | paper | pass | fail | not tested |",
             "|---|---|---|---|---|"]
    for study, rows in table.groupby("study", sort=False):
        counts = rows["verdict"].value_counts()
        lines.append(f"| {study} | {rows['paper'].iloc[0]} | {counts.get('pass', 0)} | "
                     f"{counts.get('fail', 0)} | {counts.get('not tested', 0)} |")
    for study, rows in table.groupby("study", sort=False):
        lines += ["", to_markdown(rows.drop(columns=["study", "paper"]), study).replace("# ", "## ", 1).rstrip()]
    return "\n".join(lines) + "\n"
