"""Honest verdicts (issue #17): a CI that straddles the accepted interval is inconclusive, a failed
premise is not tested (and named), and the scorecard counts all four verdicts per study."""

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scaling_atlas.claims import Claim, Premise, claims_table, decide, scorecard_markdown, verdict_counts
from scaling_atlas.corpus import bigram_cross_entropy
from scaling_atlas.laws import LawFit
from scaling_atlas.studies.transformer_family import TransformerFamilyStudy

NAN = math.nan


@pytest.mark.parametrize("ours, low, high, expected", [
    (0.50, 0.45, 0.55, "pass"),          # CI inside [0.35, 0.65]
    (0.73, 0.48, 1.10, "inconclusive"),  # the Approach 2: straddles the upper edge
    (0.50, 0.20, 0.90, "inconclusive"),  # wider than the accepted interval on both sides
    (0.90, 0.80, 1.00, "fail"),          # wholly above
    (0.10, 0.00, 0.30, "fail"),          # wholly below
    (0.60, NAN, NAN, "pass"),            # no CI: the point estimate decides
    (0.70, NAN, NAN, "fail"),
    (NAN, NAN, NAN, "not tested"),       # no estimate
])
def test_verdict_rule(ours, low, high, expected):
    verdict, reason = decide(0.5, 0.15, ours, low, high)
    assert verdict == expected
    assert ("no CI" in reason) == (expected in ("pass", "fail") and math.isnan(low))


def test_a_failed_premise_is_not_tested_and_named():
    held = Premise("IsoFLOP minima inside the sampled sizes", True, "4 of 4 budgets")
    plateau = Premise("past the plateau", False, "3 of 24 runs below 3.90 nats/token")
    verdict, reason = decide(0.5, 0.15, 0.5, 0.45, 0.55, (held, plateau))
    assert verdict == "not tested"
    assert "past the plateau: FAILS (3 of 24 runs below 3.90 nats/token)" in reason
    assert "IsoFLOP" not in reason  # only the failing premise is named


def test_claims_table_and_scorecard_count_every_verdict():
    claims = [Claim("a", "s", "p", "paper", 0.5, 0.1, 0.5, ci_low=0.45, ci_high=0.55),
              Claim("b", "s", "p", "paper", 0.5, 0.1, 0.5, ci_low=0.2, ci_high=0.9),
              Claim("c", "s", "p", "paper", 0.5, 0.1, 0.9),
              Claim("d", "s", "p", "paper", 1.0, 0.3, 1.0,
                    premises=[Premise("not set by construction", False, "the generator sets it")])]
    table = claims_table(claims)
    assert list(table["verdict"]) == ["pass", "inconclusive", "fail", "not tested"]
    assert table.loc[3, "premises"] == "not set by construction: FAILS (the generator sets it)"
    assert {"ci_low", "ci_high", "premises", "verdict_reason"} <= set(table.columns)
    both = pd.concat([table.assign(study="x", paper="P1"), table.iloc[:1].assign(study="y", paper="P2")])
    counts = verdict_counts(both)
    assert counts.to_dict("records") == [
        {"study": "x", "paper": "P1", "pass": 1, "fail": 1, "inconclusive": 1, "not tested": 1, "claims": 4},
        {"study": "y", "paper": "P2", "pass": 1, "fail": 0, "inconclusive": 0, "not tested": 0, "claims": 1}]
    text = scorecard_markdown(both)
    assert "| x | P1 | 1 | 1 | 1 | 1 |" in text and "**inconclusive**: 95 % CI [0.2, 0.9] straddles" in text


def test_bigram_level_known_answers():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 8, 200_000)
    assert bigram_cross_entropy(uniform[:150_000], uniform[150_000:], 8) == pytest.approx(math.log(8), abs=0.01)
    cycle = np.tile(np.arange(8), 10_000)  # each token fixes the next: the bigram level is ≈ 0
    assert bigram_cross_entropy(cycle[:60_000], cycle[60_000:], 8) < 0.01
    # a first-order Markov chain with a known conditional entropy
    stay = 0.9
    x = np.zeros(300_000, dtype=np.int64)
    flips = rng.random(len(x)) > stay
    for i in range(1, len(x)):
        x[i] = x[i - 1] ^ flips[i]
    h = -(stay * math.log(stay) + (1 - stay) * math.log(1 - stay))
    assert bigram_cross_entropy(x[:200_000], x[200_000:], 2) == pytest.approx(h, abs=0.01)


def test_plateau_premise_counts_runs_below_the_bigram_level():
    cube = xr.Dataset(attrs={"corpus_bigram_cross_entropy_nats": 3.9, "corpus_unigram_entropy_nats": 4.83})
    held = TransformerFamilyStudy.plateau_premise(cube, [3.0, 3.5, 3.8, 3.85, 4.5])
    assert held.holds and "4 of 5 runs below 3.90" in held.detail
    failed = TransformerFamilyStudy.plateau_premise(cube, [3.0, 4.85, 4.84, 4.9, np.nan])
    assert not failed.holds and "1 of 4 runs" in failed.detail
    assert not TransformerFamilyStudy.plateau_premise(xr.Dataset(), [1.0]).holds  # level unknown


def test_parameters_at_bound_are_reported():
    x = np.geomspace(1, 100, 30)
    y = 2.0 * x ** -0.7 + 0.05  # the true offset 0.05 lies below the bound ln E ≥ ln 0.5
    fit = LawFit("power_law_offset", bounds={"e": (math.log(0.5), math.inf)},
                 starts={"a": [0.0, 1.0], "alpha": [0.5, 1.0], "e": [math.log(0.5), 0.0]})
    fit.fit({"x": x}, y)
    assert fit.parameters_at_bound() == ["e"] and fit.attributes()["parameters_at_bound"] == "e"
    free = LawFit("power_law_offset").fit({"x": x}, y)
    assert free.parameters_at_bound() == [] and free.attributes()["parameters_at_bound"] == "none"


def test_scored_claims_carry_the_preset_and_the_shared_or_their_own_deviations():
    from scaling_atlas.claims import ClaimSpec, Measured, score

    specs = (ClaimSpec("a", "s", "p", "paper", 1.0, 0.1),
             ClaimSpec("b", "s", "p", "paper", 1.0, 0.1, "its own deviation"))
    out = score(specs, {"a": Measured(1.05), "b": Measured(1.0, "detail", ci=(0.5, 1.5))},
                "quick", "our scale")
    assert [c.preset for c in out] == ["quick", "quick"]
    assert [c.deviations for c in out] == ["our scale", "its own deviation"]
    assert [c.verdict for c in out] == ["pass", "inconclusive"]
