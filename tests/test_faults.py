"""Faults in finished results (#19 item 4): a shard whose coordinate had a bit flipped, a shard
of NaN not marked diverged, a corrupt shard file. Each is caught before assembly, named with
how to rebuild it, and the other finished shards are left as they are."""

import shutil

import numpy as np
import pytest

from scaling_atlas.cubes import ShardError, check_shards, open_cube, read_manifest, write_netcdf
from scaling_atlas.studies import study_class

from conftest import reproducible_env, snakemake

pytestmark = pytest.mark.workflow


def _shards(ci_run, tmp_path, study="superposition"):
    folder = tmp_path / study
    shutil.copytree(ci_run / "results" / study / "shards", folder)
    manifest = read_manifest(ci_run / "results" / study / "manifest.tsv")
    return sorted(folder.glob("*.nc")), manifest, study_class(study)


def _check(paths, manifest, cls):
    return check_shards(paths, manifest, cls.finite_results, cls.measured_in_shard)


@pytest.mark.parametrize("study", ["superposition", "compute_optimal", "emergence", "resolution",
                                   "data_selection", "matrix_sensing", "superposition_lm"])
def test_intact_shards_pass_the_check(ci_run, tmp_path, study):
    paths, manifest, cls = _shards(ci_run, tmp_path, study)
    assert len(_check(paths, manifest, cls)) == len(paths)


def test_a_flipped_bit_in_a_coordinate_is_named(ci_run, tmp_path):
    paths, manifest, cls = _shards(ci_run, tmp_path)
    shard = open_cube(paths[0])
    gamma = shard["gamma"].values.copy()
    flipped = gamma.view(np.uint64).copy()
    flipped[0] ^= np.uint64(1)  # the lowest mantissa bit: -1.0 becomes -1.0000000000000002
    shard = shard.assign_coords(gamma=("run", flipped.view(np.float64)))
    write_netcdf(shard, paths[0])
    with pytest.raises(ShardError) as error:
        _check(paths, manifest, cls)
    text = str(error.value)
    assert f"shard {paths[0]}: run {shard['run'].values[0]}: gamma is" in text
    assert f"is {float(flipped.view(np.float64)[0])!r}, the manifest plans {float(gamma[0])!r}" in text
    assert f"rm {paths[0]}" in text and str(paths[1]) not in text


def test_a_shard_of_nan_not_marked_diverged_is_refused_and_accepted_when_marked(ci_run, tmp_path):
    paths, manifest, cls = _shards(ci_run, tmp_path)
    shard = open_cube(paths[1])
    for name, var in shard.data_vars.items():
        if var.dtype.kind == "f" and name != "diverged":
            shard[name] = var.where(False)
    write_netcdf(shard, paths[1])
    with pytest.raises(ShardError) as error:
        _check(paths, manifest, cls)
    text = str(error.value)
    assert "loss_eval is not finite, and the run is not marked diverged" in text
    assert "every result is NaN" in text and str(paths[1]) in text
    shard["diverged"] = shard["diverged"] * 0 + 1  # marked: a diverged run may hold NaN
    write_netcdf(shard, paths[1])
    assert len(_check(paths, manifest, cls)) == len(paths)
    shard["diverged"] = shard["diverged"] * 0 + 0.5
    write_netcdf(shard, paths[1])
    with pytest.raises(ShardError, match="diverged is 0.5, not 0 or 1"):
        _check(paths, manifest, cls)


def test_a_shard_with_other_runs_is_named(ci_run, tmp_path):
    paths, manifest, cls = _shards(ci_run, tmp_path)
    shutil.copyfile(paths[0], paths[1])  # right format, wrong runs
    with pytest.raises(ShardError, match=f"shard {paths[1]}: holds runs"):
        _check(paths, manifest, cls)


def test_a_corrupt_shard_file_says_to_delete_it(ci_run, tmp_path):
    paths, manifest, cls = _shards(ci_run, tmp_path)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])  # a truncated copy
    with pytest.raises(ShardError) as error:
        _check(paths, manifest, cls)
    assert f"shard {paths[2]} is unreadable" in str(error.value)
    assert f"delete it (rm {paths[2]}) and rerun" in str(error.value)


def test_the_workflow_stops_on_a_corrupt_shard_and_recovers_as_it_says(ci_run, tmp_path):
    """End to end: a truncated shard in a finished run stops assembly with the message; the
    other shards stay; deleting the file as told retrains that shard alone, to the same cube."""
    workdir = tmp_path / "work"
    shutil.copytree(ci_run, workdir, symlinks=True,
                    ignore=shutil.ignore_patterns("release", "locks", "log", "incomplete"))
    (tmp_path / "shared").symlink_to((ci_run.parent / "shared").resolve())
    target = ["--configfile", "config/presets/ci.yaml", "--", "results/superposition/cube.nc"]
    shards = sorted((workdir / "results/superposition/shards").glob("*.nc"))
    bad = shards[0]
    data = bad.read_bytes()
    bad.write_bytes(data[:200])
    others = {p: p.read_bytes() for p in shards[1:]}
    result = snakemake(workdir, *target, env=reproducible_env())
    output = result.stdout + result.stderr
    log = (workdir / "logs/superposition/assemble_cube.log").read_text()
    assert result.returncode != 0
    assert f"shard results/superposition/shards/{bad.name} is unreadable" in log
    assert f"rm results/superposition/shards/{bad.name}" in log + output
    assert all(p.read_bytes() == b for p, b in others.items())  # finished results untouched
    bad.unlink()
    again = snakemake(workdir, *target, env=reproducible_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(p.read_bytes() == b for p, b in others.items())
    assert (workdir / "results/superposition/cube.nc").read_bytes() == \
        (ci_run / "results/superposition/cube.nc").read_bytes()
