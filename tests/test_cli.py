"""The `scaling-atlas` command line on small files in every format, and on bad ones: each error
names the file, the row and the column, with exit status 2 and no traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scaling_atlas.cli import main

TRUTH = {"A": 400.0, "B": 1500.0, "E": 1.8, "alpha": 0.34, "beta": 0.37}


def _runs(noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6))
    n, d = n.ravel(), d.ravel()
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    return pd.DataFrame({"params": n, "tokens": d,
                         "loss": loss * np.exp(noise * rng.standard_normal(n.size))})


def _write(df, path):
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_fit_reads_every_format_and_writes_fits_summary_and_figure(tmp_path, suffix, capsys):
    path = _write(_runs(), tmp_path / f"runs{suffix}")
    assert main(["fit", str(path), "--x", "N=params,D=tokens", "--quiet"]) == 0
    out = tmp_path / "runs_fit"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert summary["beta"] == pytest.approx(TRUTH["beta"], abs=0.03)
    assert summary["identified"] == 1 and summary["n_points"] == 36
    assert pd.read_csv(out / "summary.csv")["alpha"].iloc[0] == pytest.approx(summary["alpha"])
    assert (out / "fit.png").stat().st_size > 10_000
    with xr.open_dataset(out / "fits.nc") as ds:
        assert ds.attrs["form"] == "chinchilla" and ds.attrs["counting_column_N"] == "params"
    assert "alpha" in capsys.readouterr().out


def test_fit_with_bootstrap_then_predict_at_a_point_and_at_a_budget(tmp_path, capsys):
    path = _write(_runs(), tmp_path / "runs.csv")
    assert main(["fit", str(path), "--x", "params,tokens", "--bootstrap", "60", "--jobs", "1",
                 "--quiet", "--out", str(tmp_path / "fit")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "fit" / "fits.nc"), "--at", "N=1e9,D=2e10"]) == 0
    line = capsys.readouterr().out.strip()  # N=1e+09, D=2e+10: 2.377  95 % interval [2.3, 2.4]  …
    match = re.search(r": ([0-9.]+)  95 % interval \[([0-9.]+), ([0-9.]+)\]", line)
    value, low, high = (float(x) for x in match.groups())
    truth = TRUTH["E"] + TRUTH["A"] / 1e9 ** TRUTH["alpha"] + TRUTH["B"] / 2e10 ** TRUTH["beta"]
    assert low < value < high and value == pytest.approx(truth, rel=0.01)
    assert main(["predict", str(tmp_path / "fit"), "--at", "C=1e21", "--level", "0.8"]) == 0
    assert "80 % interval" in capsys.readouterr().out


def test_wandb_exports_become_long_tables(tmp_path):
    steps = np.arange(100, 5001, 100)
    wide = pd.DataFrame({"Step": steps})
    for run, scale in (("small", 1.0), ("large", 0.8)):
        loss = 2.0 + scale * 30 * steps**-0.5
        wide[f"{run} - loss"] = loss
        wide[f"{run} - loss__MIN"], wide[f"{run} - loss__MAX"] = loss - 0.01, loss + 0.01
    path = _write(wide, tmp_path / "wandb_export.csv")
    assert main(["fit", str(path), "--law", "power_law_offset", "--x", "x=step", "--quiet"]) == 0
    summary = json.loads((tmp_path / "wandb_export_fit" / "summary.json").read_text())
    assert summary["n_points"] == 2 * len(steps)
    assert summary["counting_column_x"] == "step"
    history = pd.DataFrame({"_step": steps, "loss": 2.0 + 30 * steps**-0.5, "_runtime": steps / 10})
    path = _write(history, tmp_path / "history.jsonl")
    assert main(["fit", str(path), "--law", "power_law_offset", "--x", "x=step", "--quiet"]) == 0
    summary = json.loads((tmp_path / "history_fit" / "summary.json").read_text())
    assert summary["E"] == pytest.approx(2.0, rel=1e-3) and summary["alpha"] == pytest.approx(0.5, rel=1e-3)


def _error(argv, capsys):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_files_are_refused_naming_file_row_and_column(tmp_path, capsys):
    runs = _runs()
    text = runs.astype(object)
    text.loc[3, "loss"] = "n/a?"
    path = _write(text, tmp_path / "text.csv")
    err = _error(["fit", str(path), "--x", "N=params,D=tokens"], capsys)
    assert str(path) in err and "column 'loss'" in err and "row(s) 5" in err  # line 5 of the file
    assert "Traceback" not in err

    zero = runs.copy()
    zero.loc[[6, 7], "params"] = 0.0
    path = _write(zero, tmp_path / "zero.parquet")
    err = _error(["fit", str(path), "--x", "N=params,D=tokens"], capsys)
    assert "non-positive N (column 'params') in row(s) 7, 8" in err and str(path) in err

    nan = runs.copy()
    nan.loc[10, "tokens"] = np.nan
    path = _write(nan, tmp_path / "nan.jsonl")
    err = _error(["fit", str(path), "--x", "N=params,D=tokens"], capsys)
    assert "row(s) 11" in err and "pass --nan-policy drop" in err
    assert main(["fit", str(path), "--x", "N=params,D=tokens", "--nan-policy", "drop",
                 "--quiet"]) == 0
    capsys.readouterr()

    err = _error(["fit", str(_write(runs, tmp_path / "ok.csv")), "--x", "N=size,D=tokens"], capsys)
    assert "no column(s) 'size'" in err and "'params'" in err

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"params": 1e9, "tokens": 2e10, "loss": 2.5}\n{"params": 2e9,\n')
    err = _error(["fit", str(broken)], capsys)
    assert f"{broken}: line 2: not JSON" in err

    err = _error(["fit", str(tmp_path / "missing.csv")], capsys)
    assert "missing.csv: no such file" in err
    odd = tmp_path / "runs.xlsx"
    odd.write_text("x")
    assert "pass --format" in _error(["fit", str(odd)], capsys)
    assert "unknown law form 'chinchila'" in _error(["fit", str(path), "--law", "chinchila"], capsys)


def test_predict_and_isoflop_refuse_bad_arguments(tmp_path, capsys):
    path = _write(_runs(), tmp_path / "runs.csv")
    assert main(["fit", str(path), "--x", "N=params,D=tokens", "--quiet"]) == 0
    capsys.readouterr()
    fits = str(tmp_path / "runs_fit" / "fits.nc")
    assert "needs bootstrap draws" in _error(["predict", fits, "--at", "C=1e22"], capsys)
    assert "takes N, D" in _error(["predict", fits, "--at", "N=1e9"], capsys)
    assert "must be positive" in _error(["predict", fits, "--at", "N=-1,D=1e9"], capsys)
    assert "not a NetCDF file" in _error(["predict", str(path), "--at", "C=1e22"], capsys)

    iso = pd.DataFrame({"C": np.repeat([1e18, 1e19, 1e20], 5),
                        "N": np.tile([1e7, 3e7, 1e8, 3e8, 1e9], 3)})
    iso["L"] = 3 + 0.05 * np.log(iso["N"] / (2e7 * (iso["C"] / 1e18) ** 0.5)) ** 2
    path = _write(iso, tmp_path / "iso.csv")
    assert main(["isoflop", str(path), "--columns", "flops=C,n_params=N,loss=L"]) == 0
    out = capsys.readouterr().out
    assert "a = 0.5000" in out and "raw loss" in out
    err = _error(["isoflop", str(path)], capsys)
    assert "lack column(s) 'flops'" in err and str(path) in err and "--columns flops=COL" in err


def test_the_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "scaling_atlas.cli", "forms"], capture_output=True,
                            text=True, check=True)
    assert "chinchilla\n    L = E + A/N^α + B/D^β" in result.stdout
    installed = Path(sys.executable).parent / "scaling-atlas"  # beside the environment's python
    script = subprocess.run([str(installed), "--help"], capture_output=True, text=True)
    assert script.returncode == 0 and "predict" in script.stdout
