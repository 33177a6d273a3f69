"""The declared study (studies/base.py): the VARIABLES table, CLAIMS scored from measure(),
FIGURES as (caption, draw)."""

import math

import pytest
import xarray as xr

from scaling_atlas.claims import ClaimSpec, Measured, Premise, score
from scaling_atlas.cubes import missing_attributes
from scaling_atlas.studies.base import NoTrainingStudy


class Toy(NoTrainingStudy):
    kind, title = "toy", "a toy"
    VARIABLES = {"size": ("model size N", "parameters"),
                 "loss": ("loss at N, over t ≥ {tail_from}·T", "nats")}
    CLAIMS = (ClaimSpec("exponent", "L ∝ N^−α", "α = 0.5", "paper", 0.5, 0.1),
              ClaimSpec("floor", "an irreducible loss", "E > 0", "paper", 1.0, 0.5,
                        deviations="own deviation"))

    def assemble(self, shard_results, datasets=None):
        return self.describe(xr.Dataset({"loss": ("size", [3.0, 2.0])}, coords={"size": [1, 2]}))

    def fit_laws(self, cube, n_jobs=None):
        return xr.Dataset()

    def claim_deviations(self, cube):
        return "shared deviation"

    def measure(self, cube, fits):
        return {"floor": Measured(1.2, "E", premises=(Premise("past the plateau", True),)),
                "exponent": Measured(0.52, ci=(0.45, 0.65))}

    def _draw(self, cube, fits):
        return ("drawn", self.name)

    FIGURES = {"curve": ("the loss curve", _draw)}


def toy(**settings):
    return Toy("toy", {"tail_from": 0.5, **settings}, {"preset": "ci"})


def test_describe_sets_every_attribute_from_the_table_and_fills_in_settings():
    cube = toy().assemble([])
    assert cube["loss"].attrs == {"long_name": "loss at N, over t ≥ 0.5·T", "units": "nats"}
    assert cube["size"].attrs["units"] == "parameters"
    assert [p for p in missing_attributes(cube) if not p.startswith("file:")] == []


def test_describe_refuses_a_variable_the_table_lacks_and_defaults_nothing():
    ds = xr.Dataset({"loss": ("size", [1.0]), "rmse": ((), 0.1)}, coords={"size": [1]})
    with pytest.raises(ValueError, match=r"rmse not described in its VARIABLES table"):
        toy().describe(ds)
    assert "units" not in ds["loss"].attrs  # nothing written before the refusal


def test_describe_covers_every_group_of_a_tree():
    tree = xr.DataTree.from_dict({"/a": xr.Dataset({"loss": ("size", [1.0])}, coords={"size": [1]}),
                                  "/b": xr.Dataset({"loss": ((), 2.0)})})
    toy().describe(tree)
    assert tree["a/loss"].attrs["units"] == "nats" and tree["b/loss"].attrs["units"] == "nats"
    assert tree["a/size"].attrs["long_name"] == "model size N"
    bad = xr.DataTree.from_dict({"/c": xr.Dataset({"spread": ((), 1.0)})})
    with pytest.raises(ValueError, match="spread"):
        toy().describe(bad)


def test_claims_follow_the_declared_order_with_the_measured_values():
    claims = toy().claims(None, None)
    assert [c.claim_id for c in claims] == ["exponent", "floor"]  # CLAIMS order, not measure's
    exponent, floor = claims
    assert exponent.verdict == "inconclusive" and (exponent.ci_low, exponent.ci_high) == (0.45, 0.65)
    assert exponent.deviations == "shared deviation" and exponent.preset == "ci"
    assert floor.verdict == "pass" and floor.deviations == "own deviation"
    assert floor.ours_detail == "E" and floor.premises[0].holds


def test_a_claim_without_a_measurement_is_left_out_and_an_undeclared_one_refused():
    specs = Toy.CLAIMS
    only = score(specs, {"floor": Measured(math.nan)}, "ci")
    assert [c.claim_id for c in only] == ["floor"] and only[0].verdict == "not tested"
    with pytest.raises(KeyError, match="slope"):
        score(specs, {"slope": Measured(1.0)}, "ci")
    with pytest.raises(ValueError, match="declared twice: floor"):
        score(specs + specs[1:], {}, "ci")


def test_figures_come_from_the_declaration():
    assert Toy.figures == {"curve": "the loss curve"}
    assert toy().draw_figure("curve", None, None) == ("drawn", "toy")
    with pytest.raises(KeyError, match="no figure 'other'"):
        toy().draw_figure("other", None, None)


def test_the_published_study_draws_every_one_of_its_papers_figures():
    """Its figures are its paper modules' own, in the report's order (FIGURE_ORDER): a figure a
    paper module adds cannot be left out by the order list, nor named twice."""
    from scaling_atlas.studies import published

    assert sorted(published.FIGURE_ORDER) == sorted(published.PAPER_FIGURES)
    assert list(published.PublishedStudy.FIGURES) == list(published.FIGURE_ORDER)


def test_a_declared_study_leaves_no_variable_undescribed():
    """Every VARIABLES table is complete for what the study writes: checked end to end by the
    workflow tests (missing_attributes); here, that each table has a long name and a unit."""
    from scaling_atlas.studies import KINDS, study_class

    for kind in KINDS:
        table = study_class(kind).VARIABLES
        if table is None:
            continue  # not yet migrated to the declared form
        for name, (long_name, units) in table.items():
            assert long_name.strip() and isinstance(units, str) and units.strip(), (kind, name)


def test_a_group_may_describe_a_name_its_own_way_and_cite_its_attributes():
    class Grouped(Toy):
        VARIABLES = {**Toy.VARIABLES, "n_opt": ("loss-minimising N", "parameters"),
                     "a1/n_opt": ("N of the run with the lowest loss", "parameters"),
                     "residual": ("residual in {objective_space} space", "1")}

    tree = xr.DataTree.from_dict({
        "/a1": xr.Dataset({"n_opt": ((), 1.0)}),
        "/a2": xr.Dataset({"n_opt": ((), 2.0), "residual": ("point", [0.1]), "loss": ((), 3.0)},
                          attrs={"objective_space": "log", "tail_from": "0.9 (a string copy)"})})
    Grouped("toy", {"tail_from": 0.5}, {}).describe(tree)
    assert tree["a1/n_opt"].attrs["long_name"] == "N of the run with the lowest loss"
    assert tree["a2/n_opt"].attrs["long_name"] == "loss-minimising N"
    assert tree["a2/residual"].attrs["long_name"] == "residual in log space"
    # a setting wins over the group's attribute of the same name (often its string copy)
    assert tree["a2/loss"].attrs["long_name"] == "loss at N, over t ≥ 0.5·T"
    with pytest.raises(ValueError, match="a3/rmse"):
        Grouped("toy", {"tail_from": 0.5}, {}).describe(
            xr.DataTree.from_dict({"/a3": xr.Dataset({"rmse": ((), 1.0)})}))


def test_the_readme_example_study_runs_end_to_end(tmp_path):
    """The README's "Adding a study" example: one module (studies/example.py) plus its config
    section. Through Snakemake it plans, trains, assembles, fits, draws and scores, and the
    claim recovers the exponent the runs were made with."""
    import pandas as pd
    import yaml

    from conftest import snakemake, workflow_copy

    workdir = workflow_copy(tmp_path / "workflow")
    (workdir / "toy.yaml").write_text(yaml.safe_dump(
        {"only_studies": ["toy"], "studies": {"toy": {"kind": "example", "alpha": 0.7}}}))
    result = snakemake(workdir, "--cores", "2", "--configfile", "toy.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    claims = pd.read_csv(workdir / "results/toy/claims.csv").set_index("claim_id")
    assert claims.loc["alpha", "target"] == 0.7 and claims.loc["alpha", "verdict"] == "pass"
    assert abs(claims.loc["alpha", "ours"] - 0.7) < 0.05
    cube = xr.open_dataset(workdir / "results/toy/cube.nc")
    assert dict(cube.sizes) == {"size": 4, "seed": 3} and cube["loss"].attrs["units"] == "nat"
    assert (workdir / "results/toy/figures/loss.png").stat().st_size > 5_000


def test_the_schema_lists_the_registered_kinds():
    from scaling_atlas.config import ConfigError
    from scaling_atlas.studies import KINDS, load_schema, validate_config

    enum = load_schema()["properties"]["studies"]["additionalProperties"]["properties"]["kind"]["enum"]
    assert enum == list(KINDS) and "example" in enum
    with pytest.raises(ConfigError, match="kind"):
        validate_config({"studies": {"toy": {"kind": "no_such_kind"}}})


def test_the_readme_shows_the_example_study_as_it_is():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    section = readme[readme.index("## Adding a study"):]
    shown = section[section.index("```python\n") + 10: section.index("\n```", section.index("```python"))]
    module = (repo / "workflow/scaling_atlas/studies/example.py").read_text()
    assert shown.strip() == module[module.index("class ExampleStudy"):].strip()


def test_every_module_of_the_studies_package_stays_readable():
    """A study declares data and writes its science; its figures, fits or papers go to modules
    of their own when it grows (the published study is one module per paper): every file under
    studies/ stays under 450 lines, and every registered kind's module exists."""
    from conftest import REPO

    from scaling_atlas.studies import KINDS

    studies = REPO / "workflow" / "scaling_atlas" / "studies"
    sizes = {str(p.relative_to(studies)): len(p.read_text().splitlines())
             for p in studies.rglob("*.py")}
    assert len(sizes) > len(KINDS)
    too_long = {name: n for name, n in sizes.items() if n >= 450}
    assert not too_long, too_long
    for module, _ in KINDS.values():
        assert (studies / f"{module}.py").exists() or (studies / module / "__init__.py").exists()
