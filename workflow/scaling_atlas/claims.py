"""The claims scorecard: each paper claim next to our number, its CI, tolerance and a verdict.

Four verdicts, decided by :func:`decide` from the accepted interval [target − tol, target + tol],
our estimate, its 95 % confidence interval (when the study computes one) and the claim's
premises:

* **not tested**: a premise of the claim does not hold on our data (the runs sit on a plateau,
  a fitted parameter is at its bound, the IsoFLOP minimum is outside the sampled sizes, the
  quantity is set by construction, ...), or there is no estimate at all. The failed premise is
  named.
* **pass**: the CI lies inside the accepted interval (without a CI: the estimate does).
* **fail**: the CI lies wholly outside the accepted interval (without a CI: the estimate does).
* **inconclusive**: the CI straddles an edge of the accepted interval: the data cannot decide.

A premise is a check on the data, declared with the claim (:class:`Premise`), never a verdict
written by hand.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, asdict, dataclass, field

import pandas as pd

VERDICTS = ("pass", "fail", "inconclusive", "not tested")


@dataclass(frozen=True)
class Premise:
    """One condition a claim needs from the data, and whether our data meet it."""

    name: str  # short, e.g. "past the unigram plateau"
    holds: bool
    detail: str = ""  # what was measured, e.g. "9 of 24 runs below the bigram level 3.90"

    def __str__(self) -> str:
        mark = "holds" if self.holds else "FAILS"
        return f"{self.name}: {mark}" + (f" ({self.detail})" if self.detail else "")


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def decide(target: float, tolerance: float, ours: float, ci_low: float = math.nan,
           ci_high: float = math.nan, premises=()) -> tuple[str, str]:
    """The verdict and the reason for it (see the module docstring)."""
    failed = [p for p in premises if not p.holds]
    if failed:
        return "not tested", "premise failed: " + "; ".join(str(p) for p in failed)
    if not _finite(ours):
        return "not tested", "no estimate (the grid lacks the runs or the fit failed)"
    low, high = target - tolerance, target + tolerance
    if _finite(ci_low) and _finite(ci_high):
        ci = f"95 % CI [{ci_low:.3g}, {ci_high:.3g}]"
        if low <= ci_low and ci_high <= high:
            return "pass", f"{ci} inside the accepted [{low:.3g}, {high:.3g}]"
        if ci_high < low or ci_low > high:
            return "fail", f"{ci} wholly outside the accepted [{low:.3g}, {high:.3g}]"
        return "inconclusive", f"{ci} straddles an edge of the accepted [{low:.3g}, {high:.3g}]"
    inside = abs(ours - target) <= tolerance
    return ("pass" if inside else "fail"), (f"point estimate {'inside' if inside else 'outside'} the "
                                            f"accepted [{low:.3g}, {high:.3g}] (no CI)")


@dataclass
class Claim:
    """One checkable statement of a paper and what our runs say about it.

    ``target`` and ``tolerance`` define the accepted interval [target − tol, target + tol];
    ``ci_low``/``ci_high`` our 95 % interval, where the study computes one; ``premises`` what
    the claim needs from the data. ``verdict`` and ``verdict_reason`` follow by :func:`decide`.
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
    _: KW_ONLY
    ci_low: float = math.nan
    ci_high: float = math.nan
    premises: tuple[Premise, ...] = ()
    verdict: str = field(init=False)
    verdict_reason: str = field(init=False)

    def __post_init__(self):
        self.ours = math.nan if self.ours is None else float(self.ours)
        self.ci_low, self.ci_high = float(self.ci_low), float(self.ci_high)
        self.premises = tuple(self.premises)
        self.verdict, self.verdict_reason = decide(self.target, self.tolerance, self.ours,
                                                   self.ci_low, self.ci_high, self.premises)


@dataclass(frozen=True)
class ClaimSpec:
    """A claim as a study declares it (its ``CLAIMS`` table): what the paper says and what we
    accept. Our number comes from the study's ``measure(cube, fits)`` as a :class:`Measured`.

    ``deviations``: None shares the study's deviations (``Study.claim_deviations``); a string
    replaces them for this claim.
    """

    claim_id: str
    statement: str
    paper_value: str
    source: str
    target: float
    tolerance: float
    deviations: str | None = None


@dataclass(frozen=True)
class Measured:
    """Our value for one claim: the estimate, what it is, its 95 % interval, the premises."""

    ours: float
    detail: str = ""
    ci: tuple[float, float] = (math.nan, math.nan)
    premises: tuple[Premise, ...] = ()


def score(specs, measured: dict[str, Measured], preset: str, deviations: str = "") -> list[Claim]:
    """The claims of ``specs`` that have a measurement, in the order of ``specs``.

    A claim without a measurement is left out (the grid does not hold what it needs, e.g. no
    symmetric runs); a measurement of a claim that ``specs`` does not declare, or an id
    declared twice, is an error.
    """
    ids = [spec.claim_id for spec in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"claim ids declared twice: {', '.join(repeated)}")
    declared = set(ids)
    unknown = sorted(set(measured) - declared)
    if unknown:
        raise KeyError(f"measured claims not declared in CLAIMS: {', '.join(unknown)}")
    return [Claim(spec.claim_id, spec.statement, spec.paper_value, spec.source, spec.target,
                  spec.tolerance, m.ours, m.detail, preset,
                  deviations if spec.deviations is None else spec.deviations,
                  ci_low=m.ci[0], ci_high=m.ci[1], premises=m.premises)
            for spec in specs if (m := measured.get(spec.claim_id)) is not None]


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    rows = []
    for claim in claims:
        row = asdict(claim)
        row["premises"] = "; ".join(str(p) for p in claim.premises)
        rows.append(row)
    columns = [f for f in Claim.__dataclass_fields__ if f != "_"]
    return pd.DataFrame(rows, columns=columns)


def _number(x) -> str:
    return "—" if not (isinstance(x, float) and math.isfinite(x)) else f"{x:.3g}"


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A compact Markdown view: claim, paper, ours (with CI), accepted, verdict and why."""
    lines = [f"# {title}", "", "| claim | paper | ours | accepted | verdict |", "|---|---|---|---|---|"]
    for row in table.itertuples():
        accepted = f"{row.target:.3g} ± {row.tolerance:.3g}"
        ours = _number(row.ours)
        if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
            ours += f" [{row.ci_low:.3g}, {row.ci_high:.3g}]"
        lines.append(
            f"| {row.statement} | {row.paper_value} ({row.source}) | {ours} {row.ours_detail} "
            f"| {accepted} | **{row.verdict}**: {row.verdict_reason} |"
        )
    presets = ", ".join(sorted(set(table["preset"].fillna(""))))
    lines += ["", f"Preset: {presets}."]
    notes = sorted({d for d in table["deviations"].fillna("") if d})
    if notes:
        lines += ["", "Deviations from the paper's protocol:"] + [f"- {d}" for d in notes]
    return "\n".join(lines) + "\n"


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per study (in the table's order): its paper and how many claims got each verdict."""
    rows = []
    for study, group in table.groupby("study", sort=False):
        counts = group["verdict"].value_counts()
        rows.append({"study": study, "paper": group["paper"].iloc[0],
                     **{v: int(counts.get(v, 0)) for v in VERDICTS}, "claims": len(group)})
    return pd.DataFrame(rows, columns=["study", "paper", *VERDICTS, "claims"])


def scorecard_markdown(table: pd.DataFrame) -> str:
    """Every study's claims in one page: the verdict counts per study, then each study's table."""
    counts = verdict_counts(table)
    lines = ["# Claims scorecard", "",
             "| study | paper | pass | fail | inconclusive | not tested |", "|---|---|---|---|---|---|"]
    for row in counts.itertuples(index=False):
        lines.append(f"| {row.study} | {row.paper} | {row[2]} | {row[3]} | {row[4]} | {row[5]} |")
    lines += ["", "pass / fail: the 95 % CI (or, without one, the estimate) lies inside / wholly outside "
              "the accepted interval; inconclusive: the CI straddles its edge; not tested: a premise "
              "of the claim does not hold on our data (named), or there is no estimate."]
    for study, rows in table.groupby("study", sort=False):
        lines += ["", to_markdown(rows.drop(columns=["study", "paper"]), study).replace("# ", "## ", 1).rstrip()]
    return "\n".join(lines) + "\n"
