"""tools/same_results.py: the check that a refactor changed no number (#22)."""

import shutil
import subprocess
import sys

import numpy as np
import xarray as xr

from conftest import REPO

TOOL = REPO / "tools" / "same_results.py"


def _results(folder, loss=(1.0, 2.0), units="nat", commit="abc", claims="id,ours\nx,1.0\n"):
    study = folder / "toy"
    study.mkdir(parents=True)
    cube = xr.Dataset({"loss": ("run", np.array(loss))}, coords={"run": [0, 1]},
                      attrs={"source_commit": commit, "preset": "ci"})
    cube["loss"].attrs.update(units=units, long_name="loss")
    cube.to_netcdf(study / "cube.nc")
    fits = xr.DataTree.from_dict({"/a": xr.Dataset({"slope": 0.5}), "/b": xr.Dataset({"e": 1.7})})
    fits.to_netcdf(study / "fits.nc")
    (study / "claims.csv").write_text(claims)
    return folder


def _run(a, b):
    return subprocess.run([sys.executable, str(TOOL), str(a), str(b)], capture_output=True, text=True)


def test_the_same_science_made_at_another_commit_is_the_same(tmp_path):
    out = _run(_results(tmp_path / "a"), _results(tmp_path / "b", commit="def"))
    assert out.returncode == 0 and "1 studies compared: the same" in out.stdout


def test_one_bit_a_unit_or_a_claim_is_a_difference(tmp_path):
    before = _results(tmp_path / "a")
    bit = np.nextafter(2.0, 3.0)
    for name, kwargs, expected in (("bit", {"loss": (1.0, bit)}, "variable loss differs"),
                                   ("unit", {"units": "1"}, "attributes of loss differ: units"),
                                   ("claim", {"claims": "id,ours\nx,1.01\n"}, "claims.csv differs")):
        out = _run(before, _results(tmp_path / name, **kwargs))
        assert out.returncode == 1 and expected in out.stdout, (name, out.stdout)
    gone = _results(tmp_path / "gone")
    shutil.rmtree(gone / "toy")
    _results(gone).joinpath("toy", "fits.nc").unlink()
    out = _run(before, gone)
    assert out.returncode == 1 and "fits.nc exists only before" in out.stdout
