"""Config validation: defaults filled, every bad input named with its key and rule."""

import copy
import re

import yaml

import pytest

from scaling_atlas.config import ConfigError, load_schema
from scaling_atlas.studies import validate_config

from conftest import REPO, load_config


def with_study(config, **changes):
    config = copy.deepcopy(config)
    config["studies"]["superposition"].update(changes)
    return config


def problems_of(config) -> str:
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    return str(error.value)


def test_default_and_presets_validate_and_fill_defaults():
    for preset in (None, "ci", "reproduce", "paper"):
        config = validate_config(load_config(preset))
        section = config["studies"]["superposition"]
        assert section["last_steps"] == 100 or preset == "ci"
        assert config["device"] == "auto"


def test_every_schema_key_has_description_and_default():
    schema = load_schema()

    def walk(node, path):
        for key, spec in node.get("properties", {}).items():
            assert "description" in spec, f"{path}.{key} has no description"
            assert "default" in spec, f"{path}.{key} has no default"
            walk(spec, f"{path}.{key}")

    walk(schema, "config")
    for name, definition in schema["$defs"].items():
        walk(definition, name)


@pytest.mark.parametrize(
    "change, key, rule",
    [
        ({"widths": [0, 4]}, "studies.superposition.widths[0]", "minimum"),
        ({"steps": -5}, "studies.superposition.steps", "minimum"),
        ({"steps": "many"}, "studies.superposition.steps", "type"),
        ({"distributions": ["zipf"]}, "studies.superposition.distributions[0]", "enum"),
        ({"n": 8}, "studies.superposition.widths", "m ≤ n"),
        ({"densities": [9.0], "alphas": [1.0], "n": 1000}, "studies.superposition.densities", "E ≤ 1/p_1"),
        ({"last_steps": 500, "steps": 100}, "studies.superposition.last_steps", "last_steps ≤ steps"),
        ({"widths": [8]}, "studies.superposition.widths", "≥ 2 fitted widths"),
        ({"lerning_rate": 0.1}, "studies.superposition", "unknown keys"),
    ],
)
def test_bad_values_name_key_and_rule(change, key, rule):
    text = problems_of(with_study(load_config(), **change))
    assert key in text and f"rule: {rule}" in text


def test_unknown_top_level_key_and_kind():
    config = load_config()
    config["devcie"] = "cpu"
    text = problems_of(config)
    assert "devcie" in text and "unknown keys" in text
    config = load_config()
    config["studies"]["superposition"]["kind"] = "alchemy"
    assert "studies.superposition.kind" in problems_of(config)


def test_all_problems_reported_at_once():
    text = problems_of(with_study(load_config(), steps=-1, batch_size=0))
    assert len(re.findall(r"^\s+- ", text, flags=re.M)) == 2


@pytest.mark.parametrize("preset", [None, "ci", "reproduce", "paper"])
def test_resolved_config_round_trips_through_yaml(preset):
    # a release stores the resolved config as YAML; fed back, it must validate unchanged
    resolved = validate_config(load_config(preset))
    again = validate_config(yaml.safe_load(yaml.safe_dump(resolved)))
    assert again == resolved


def with_section(config, name, **changes):
    config = copy.deepcopy(config)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config["studies"][name].get(key), dict):
            config["studies"][name][key] = {**config["studies"][name][key], **value}
        else:
            config["studies"][name][key] = value
    return config


@pytest.mark.parametrize("name, change, expected", [
    # issue #17's recipe: depth ≥ 2, embeddings ≤ 30 % of the parameters
    ("compute_optimal", {"widths": [8, 16, 24, 32, 48, 64]},
     "studies.compute_optimal.widths[0]: width 8 puts 39% of the model's parameters in embeddings"),
    ("superposition_lm", {"family": {"n_layer": 1}}, "studies.superposition_lm.family.n_layer: 1 layer"),
    ("superposition_lm", {"corpus": {"source": "grammar", "grammar": {"vocab_size": 1024, "rules": 64}}},
     "above family.max_embedding_share = 30% (vocabulary 1024)"),
    # each budget's trained sizes bracket its expected optimum, named by the budget
    ("compute_optimal", {"budgets": [1.0e+11, 2.0e+11, 5.0e+11, 1.0e+14]},
     "studies.compute_optimal.budgets[3]: C = 1e+14 FLOP trains N = 107,136–107,136, which does "
     "not bracket its expected optimum N* ≈ 912,871 (√(C/6r), expected_tokens_per_parameter r = 20); "
     "add widths above it"),
    ("compute_optimal", {"expected_tokens_per_parameter": 1.0e+6},
     "studies.compute_optimal.budgets[0]: C = 1e+11 FLOP trains N = 8,352–61,920, which does not "
     "bracket its expected optimum N* ≈ 129 (√(C/6r), expected_tokens_per_parameter r = 1e+06); "
     "add widths below it"),
    ("compute_optimal", {"corpus": {"source": "grammar", "grammar": {"zipf_exponent": 0.2}}},
     "grammar.within_exponent = 0.3 must be below zipf_exponent = 0.2"),
    ("compute_optimal", {"corpus": {"source": "python_stdlib", "sha256": "abc"}},
     "studies.compute_optimal.corpus.sha256"),
])
def test_transformer_regime_checks_name_the_key(name, change, expected):
    assert expected in problems_of(with_section(load_config(), name, **change))


@pytest.mark.parametrize("name, change, expected", [
    # issue #19, item 2: every number finite, every integer written as one
    ("superposition", {"lr": float("nan")}, "studies.superposition.lr: nan is not a finite number (rule: type)"),
    ("superposition", {"n": 64.0}, "studies.superposition.n: 64.0 must be written as an integer (64) (rule: type)"),
    ("compute_optimal", {"budgets": [float("nan"), float("inf")]},
     "studies.compute_optimal.budgets[0]: nan is not a finite number"),
    ("compute_optimal", {"budgets": [1e11, float("-inf")]},
     "studies.compute_optimal.budgets[1]: -inf is not a finite number"),
    ("superposition_lm", {"tokens": True}, "studies.superposition_lm.tokens: True is not of type 'integer'"),
])
def test_non_finite_and_non_integral_numbers_are_named(name, change, expected):
    text = problems_of(with_section(load_config(), name, **change))
    assert expected in text and "Traceback" not in text


def test_non_finite_numbers_from_yaml_are_named():
    config = load_config()
    config["studies"]["superposition"].update(yaml.safe_load("lr: .nan\nsteps: .inf\n"))
    text = problems_of(config)
    assert "studies.superposition.lr: nan is not a finite number" in text
    assert "studies.superposition.steps: inf is not a finite number" in text


def _renamed(name):
    config = load_config()
    config["studies"] = {name: config["studies"]["published"]}
    return config


def _top(**changes):
    return {**load_config(), **changes}


@pytest.mark.parametrize("config, expected", [
    # issue #19, item 2: upper bounds where a value would never finish
    (with_section(load_config(), "superposition", steps=10**12),
     "studies.superposition.steps: 1000000000000 is greater than the maximum of 10000000"),
    (with_section(load_config(), "superposition_lm", tokens=10**13),
     "studies.superposition_lm.tokens: 10000000000000 is greater than the maximum"),
    (with_section(load_config(), "compute_optimal", budgets=[1e11, 1e30]),
     "studies.compute_optimal.budgets[1]: 1e+30 is greater than the maximum of 1e+21"),
    (with_section(load_config(), "superposition", widths=[4, 10**7]),
     "studies.superposition.widths[1]: 10000000 is greater than the maximum"),
    (with_section(load_config(), "emergence", passuntil={"k_max": 10**12}),
     "studies.emergence.passuntil.k_max: 1000000000000 is greater than the maximum"),
    (with_section(load_config(), "superposition", batch_size=10**9),
     "studies.superposition.batch_size: 1000000000 is greater than the maximum"),
    (with_section(load_config(), "matrix_sensing", n=10**6),
     "studies.matrix_sensing.n: 1000000 is greater than the maximum of 10000"),
    # item 3: grids are counted before they are built
    (with_section(load_config(), "superposition", seeds=list(range(1000))),
     "studies.superposition: the grid has 54,000 runs, more than max_runs (20,000)"),
    (_top(max_runs=10), "studies.superposition: the grid has 54 runs, more than max_runs (10)"),
    (_top(max_runs=0), "max_runs: 0 is less than the minimum of 1"),
    # item 10: study names become folders
    (_renamed("../evil"), "'../evil' is not a valid study name"),
    (_renamed("two words"), "'two words' is not a valid study name"),
    (_renamed("1st"), "'1st' is not a valid study name"),
    # item 10: settings that would be silently ignored, or a grid that would be empty
    (with_section(load_config(), "superposition", lr_rule="width_scaled", lr_bias=0.05),
     "studies.superposition.lr_bias: 0.05 would be ignored: lr_rule width_scaled sets lr_b = 2/m"),
    (with_section(load_config(), "compute_optimal", max_tokens_per_parameter=0.01),
     "studies.compute_optimal.budgets[0]: C = 1e+11 FLOP trains no size: every width gives fewer "
     "than min_steps = 100 steps or more than max_tokens_per_parameter = 0.01"),
    # item 10: the mirror folder is checked before any job, not when the job runs
    (with_section(load_config(), "published", mirror_dir="no/such/folder"),
     "studies.published.mirror_dir: no/such/folder does not exist"),
    (with_section(load_config(), "published", mirror_dir=None),
     "studies.published.mirror_dir: null, but gadre2024_overtraining_models.csv"),
])
def test_reliability_checks_name_the_key(config, expected):
    text = problems_of(config)
    assert expected in text and "Traceback" not in text


def test_planning_a_large_grid_is_quick_and_counted_exactly():
    """#19 item 3: 10^5 runs validate and plan, and the count is the runs' number (how fast is
    measured in benchmarks/, not here: a timed assertion fails on a busy machine)."""
    from scaling_atlas.studies import get_study

    config = load_config()
    config["max_runs"] = 100_000
    config["studies"] = {"big": {"kind": "superposition", "n": 256, "widths": list(range(2, 102)),
                                 "alphas": [0.1 * i for i in range(1, 11)],
                                 "gammas": [-1.0 + 0.1 * i for i in range(10)],
                                 "seeds": list(range(10)), "max_runs_per_shard": 500}}
    study = get_study("big", validate_config(config))
    shards = study.shards()
    assert study.run_count() == sum(len(runs) for runs in shards.values()) == 100_000


@pytest.mark.parametrize("preset", [None, "ci", "reproduce", "paper"])
def test_every_study_counts_its_runs_without_building_them(preset):
    from scaling_atlas.studies import get_study

    config = validate_config(load_config(preset))
    for name in config["studies"]:
        study = get_study(name, config)
        assert study.run_count() == len(study.runs()), name


@pytest.mark.parametrize("text, expected", [
    ("studies:\n  superposition:\n    widths: [4, 8\n    steps: 10\n",
     "bad.yaml, line 4, column 10: YAML syntax error"),
    ("studies:\n\tsuperposition: {}\n", "bad.yaml, line 2, column 1: YAML syntax error"),
    ("- just\n- a list\n", "bad.yaml: a config file is a mapping of keys, not a list"),
    ("studies:\n  superposition:\n    steps: 1.0e+12\n",
     "studies.superposition.steps: 1000000000000.0 is greater than the maximum of 10000000"),
])
def test_make_run_checks_the_config_files_first(tmp_path, text, expected):
    """`make run` calls `scaling-atlas config check` before Snakemake (whose own
    messages for these carry no line, or are a traceback)."""
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "scaling_atlas.cli", "config", "check", "--configfile",
                             str(tmp_path / "bad.yaml")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert expected in result.stderr and "No job was started" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_preset_is_named_with_the_presets_there_are():
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run([sys.executable, "-m", "scaling_atlas.cli", "config", "check", "--configfile",
                             "config/presets/nope.yaml"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config/presets/nope.yaml: no such config file (presets: ci, paper, reproduce)" in result.stderr
    ok = subprocess.run([sys.executable, "-m", "scaling_atlas.cli", "config", "check", "--configfile",
                         "config/presets/ci.yaml"], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0 and "config ok: preset ci" in ok.stdout
    recipe = (REPO / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert recipe.startswith(" check")


# ---- #17: IsoFLOP grids centred on each budget's optimum, and the regime rules --------------------
REGIME = {"family": {"aspect_ratio": 128, "head_dim": 4}, "budgets": [3.0e+11, 1.0e+12, 3.0e+12, 1.0e+13],
          "sizes_per_budget": 7, "size_ratio": 1.4, "batch_size": 4, "min_steps": 1000,
          "seeds": [0, 1], "lr_sweep": [0.003, 0.01, 0.03], "regime_checks": True}


def test_centred_grid_gives_each_budget_its_own_sizes_around_its_optimum():
    from scaling_atlas.studies import get_study

    config = validate_config(with_section(load_config(), "compute_optimal", **REGIME))
    study = get_study("compute_optimal", config)
    widths = study.budget_widths()
    assert len(widths) == 4
    for budget, chosen in widths.items():
        sizes = sorted(study.model_size(w) for w in chosen)
        n_star = study.expected_optimum(budget)
        assert len(sizes) == 7 and sizes[0] < n_star < sizes[-1]
        assert sizes[2] <= n_star * 1.5 and sizes[4] >= n_star / 1.5  # centred
        spacing = (sizes[-1] / sizes[0]) ** (1 / 6)
        assert 1.3 <= spacing <= 1.5
    # every trained run ≥ 1000 steps; the pairs that are not trained are named in the cube's attrs
    seq = config["studies"]["compute_optimal"]["batch_size"] * 64
    assert all(p["tokens"] / seq >= 1000 for p in study.grid())
    assert study.run_count() == len(study.runs()) == 4 * 7 * 2 * 3


@pytest.mark.parametrize("change, expected", [
    ({"budgets": [1.0e+12, 3.0e+12, 1.0e+13]}, "budgets: 3 budgets over 1.00 decades"),
    ({"min_steps": 500}, "min_steps: 500; every trained run needs ≥ 1000 steps"),
    ({"lr_sweep": []}, "lr_sweep: empty"),
    ({"seeds": [0]}, "seeds: [0]; the regime needs ≥ 2 seeds"),
    ({"batch_size": 8}, "budgets[0]: C = 3e+11 FLOP trains 6 sizes"),
    ({"size_ratio": 2.0}, "spaced ×"),
])
def test_regime_checks_refuse_a_grid_that_cannot_measure_the_law(change, expected):
    text = problems_of(with_section(load_config(), "compute_optimal", **{**REGIME, **change}))
    assert expected in text and "rule: regime_checks" in text


def test_superposition_lm_trains_each_width_to_a_fixed_tokens_per_parameter():
    from scaling_atlas.models.shape import parameter_counts
    from scaling_atlas.studies import get_study

    config = validate_config(with_section(load_config(), "superposition_lm", tokens_per_parameter=100))
    study = get_study("superposition_lm", config)
    for point in study.grid():
        n = parameter_counts(study.model_config(point["width"]))["total"]
        assert point["tokens"] == pytest.approx(100 * n, abs=1)
    assert study.tokens_needed() >= max(p["tokens"] for p in study.grid())


LM_REGIME = {"family": {"n_layer": 2}, "widths": [16, 24, 32, 48, 64, 96, 128],
             "tokens_per_parameter": 100, "batch_size": 12, "lr_sweep": [0.003, 0.01, 0.03],
             "regime_checks": True}


def test_the_reproduce_width_grid_meets_the_regime_rules():
    validate_config(with_section(load_config(), "superposition_lm", **LM_REGIME))
    validate_config(load_config("reproduce"))  # both transformer blocks there are regime-valid


@pytest.mark.parametrize("change, expected", [
    ({"widths": [32, 48, 64, 96]}, "widths: N spans 0.91 decades (28,992–234,432)"),
    ({"family": {"n_layer": 0}}, "family.n_layer: 0 lets depth follow the width"),
    ({"tokens_per_parameter": 50}, "widths[0]: width 16 trains on D/N = 50"),
    ({"batch_size": 32}, "widths[0]: width 16 trains 408 steps"),
    ({"lr_sweep": []}, "lr_sweep: empty"),
])
def test_superposition_lm_regime_checks_name_the_key(change, expected):
    text = problems_of(with_section(load_config(), "superposition_lm", **{**LM_REGIME, **change}))
    assert f"studies.superposition_lm.{expected}" in text and "rule: regime_checks" in text


def test_backtest_presets_select_their_families_and_name_bad_ones():
    """only_groups is a list, so a preset replaces the quick selection whole (a mapping would be
    merged key by key and keep the quick run's groups); typos and unknown datasets are named."""
    quick = validate_config(load_config())["studies"]["backtest"]
    assert "gadre_overtraining/rw_original" in quick["only_groups"]
    for preset in ("reproduce", "paper"):
        section = validate_config(load_config(preset))["studies"]["backtest"]
        assert section["only_groups"] == [] and "porian_isoflop" in section["datasets"]
    config = with_section(load_config(), "backtest", only_groups=["gadre/rw_original", "rw_original"],
                          datasets=["epoch_chinchilla", "luo_mpl_curves"], procedures=["chinchila"])
    text = problems_of(config)
    assert "only_groups: 'gadre/rw_original' is not DATASET/GROUP with a registered dataset" in text
    assert "only_groups: 'rw_original' is not DATASET/GROUP" in text
    assert "datasets: luo_mpl_curves has no D (tokens per step are not in the files)" in text
    assert "procedures: unknown procedure 'chinchila'" in text


def test_config_readme_is_the_schema_written_out():
    """config/README.md (the Snakemake workflow catalog shows it) lists every key of the schema
    with its default and description: regenerate it with `scaling-atlas config docs`."""
    from scaling_atlas.config_docs import config_markdown
    from scaling_atlas.studies import KINDS, load_schema

    text = (REPO / "config" / "README.md").read_text()
    assert text == config_markdown(load_schema()), "run: scaling-atlas config docs > config/README.md"
    assert all(f"### kind `{kind}`" in text for kind in KINDS)
    assert "| `studies` |" not in text and "| `container` | string or null | `null` |" in text
    assert "| `family.aspect_ratio` |" in text  # nested sections are listed by their dotted key
