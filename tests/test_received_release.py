"""A received release is data, never code (issue #19, item 1).

Snakemake renders a config file that sets ``__use_yte__: true`` as a YTE template, which runs
Python even in a dry run. ``make verify`` (``python -m scaling_atlas.release rerun``) must read a
release's config with a safe loader, refuse templating, validate it, and hand it to Snakemake as
plain JSON. These tests build hostile releases whose payload would create a marker file.
"""

import json
import subprocess
import sys

import pytest
import yaml
from snakemake.common.configfile import load_configfile

from scaling_atlas.release import ReceivedReleaseError, load_manifest, load_received_config

from conftest import REPO, load_config


def _release(folder, config_text, manifest=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config_text)
    manifest = {"files": {}, "source_date_epoch": "1767225600"} if manifest is None else manifest
    (folder / "MANIFEST.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder


def _rerun(release, cwd):
    return subprocess.run([sys.executable, "-m", "scaling_atlas.release", "rerun", str(release)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def _yte_payload(marker):
    return f"__use_yte__: true\npreset: ?open({str(marker)!r}, 'w').write('ran') and 'ci'\n"


def test_snakemake_runs_a_yte_config(tmp_path):
    """The hazard is real: Snakemake's own loader executes the template's expression."""
    marker = tmp_path / "ran"
    (tmp_path / "config.yaml").write_text(_yte_payload(marker))
    load_configfile(str(tmp_path / "config.yaml"))
    assert marker.exists()


def test_rerun_refuses_a_templating_release_before_running_anything(tmp_path):
    marker = tmp_path / "ran"
    release = _release(tmp_path / "release", _yte_payload(marker))
    work = tmp_path / "work"
    work.mkdir()
    result = _rerun(release, work)
    assert result.returncode == 2
    assert "templating key '__use_yte__'" in result.stderr and "config.yaml" in result.stderr
    assert "preset: templating expression" in result.stderr and "Nothing was run" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists() and list(work.iterdir()) == []  # no snakemake, no results


@pytest.mark.parametrize("text, expected", [
    ("preset: ?__import__('os').system('true')\n", "preset: templating expression"),
    ("studies:\n  ?if True:\n    x: 1\n", "studies.?if True: templating key"),
    ("__definitions__:\n  - import os\n", "__definitions__: templating key"),
    ("preset: !!python/object/apply:os.system ['true']\n", "not plain YAML data (line 1"),
    ("preset: [unclosed\n", "not plain YAML data (line 2"),
    ("- a list\n", "must be a mapping"),
    ("seed_salt: .nan\n", "seed_salt: nan is not a finite number"),
    ("when: 2026-12-05\n", "a value JSON cannot hold"),
    ("no_such_key: 1\n", "no_such_key"),
])
def test_received_config_refusals(tmp_path, text, expected):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ReceivedReleaseError) as error:
        load_received_config(tmp_path / "config.yaml")
    assert expected in str(error.value) and str(tmp_path / "config.yaml") in str(error.value)


@pytest.mark.parametrize("manifest, expected", [
    ("{not json", "not valid JSON"),
    ({"source_date_epoch": "1"}, "no 'files' mapping"),
    ({"files": {}, "source_date_epoch": "$(touch /tmp/x)"}, "not a whole number of seconds"),
    ({"files": {}, "source_date_epoch": 17}, "not a whole number of seconds"),
])
def test_malformed_manifest_is_named(tmp_path, manifest, expected):
    release = _release(tmp_path, "preset: ci\n", manifest)
    with pytest.raises(ReceivedReleaseError, match=expected):
        load_manifest(release)
    result = _rerun(release, tmp_path)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_a_plain_release_config_loads_unchanged(tmp_path):
    config = load_config("ci")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert load_received_config(tmp_path / "config.yaml") == config


def test_make_verify_goes_through_the_safe_loader():
    recipe = (REPO / "Makefile").read_text().split("\nverify:", 1)[1].split("\n\n", 1)[0]
    assert "scaling_atlas.release rerun" in recipe and "--configfile" not in recipe


@pytest.mark.parametrize("entry, expected", [
    ({"sha256": "zz", "kind": "table", "match": "exact"}, "sha256 is not 64 lowercase hex digits"),
    ({"sha256": "a" * 64, "kind": "pickle", "match": "exact"}, "kind 'pickle' is not one of"),
    ({"sha256": "a" * 64, "kind": "table", "match": "close"}, "match 'close' is not exact or tolerance"),
    ({"sha256": "a" * 64, "kind": "table", "match": "tolerance", "rtol": "1e-2"}, "rtol '1e-2' is not"),
    ("a" * 64, "not a mapping"),
])
def test_malformed_manifest_entries_are_named(tmp_path, entry, expected):
    release = _release(tmp_path, "preset: ci\n", {"files": {"claims.csv": entry}})
    with pytest.raises(ReceivedReleaseError, match=r"files\['claims.csv'\]: " + expected):
        load_manifest(release)


@pytest.mark.parametrize("name", ["../outside.csv", "/etc/passwd", "a/../../b.csv"])
def test_manifest_paths_must_stay_inside_the_results(tmp_path, name):
    entry = {"sha256": "a" * 64, "kind": "table", "match": "exact"}
    release = _release(tmp_path, "preset: ci\n", {"files": {name: entry}})
    with pytest.raises(ReceivedReleaseError, match="not a relative path inside the results folder"):
        load_manifest(release)


def test_tables_compare_numbers_as_numbers_and_name_only_changed_rows(tmp_path):
    """#19 item 5: fits_summary.csv mixes numbers and text in one column; a last-digit change
    within the tolerance is no difference, and only the rows that changed are named."""
    from scaling_atlas.release import compare_table

    header = "fit,parameter,value\n"
    a = header + "approach2,a,0.5123456789\napproach2,method,bootstrap\napproach3,alpha,0.34\n"
    b = header + "approach2,a,0.5123456788\napproach2,method,bootstrap\napproach3,alpha,0.36\n"
    (tmp_path / "a.csv").write_text(a)
    (tmp_path / "b.csv").write_text(b)
    assert compare_table(tmp_path / "a.csv", tmp_path / "a.csv", 0.0) == []
    within = compare_table(tmp_path / "a.csv", tmp_path / "b.csv", 1e-2)
    assert within == ["column value: parameter alpha differ (beyond rtol 0.01)"]
    exact = compare_table(tmp_path / "a.csv", tmp_path / "b.csv", 0.0)
    assert exact == ["column value: parameter a, parameter alpha differ (exactly)"]
    # with no unique, unchanged column, rows are named by number
    (tmp_path / "e.csv").write_text("fit,value\nx,1\nx,2\n")
    (tmp_path / "f.csv").write_text("fit,value\nx,1\nx,3\n")
    assert compare_table(tmp_path / "e.csv", tmp_path / "f.csv", 0.0) == ["column value: row 2 differ (exactly)"]
    # a unique, unchanged column names the rows
    (tmp_path / "c.csv").write_text("claim,ours\nalpha,0.5\nbeta,text\n")
    (tmp_path / "d.csv").write_text("claim,ours\nalpha,0.5\nbeta,other\n")
    assert compare_table(tmp_path / "c.csv", tmp_path / "d.csv", 0.0) == ["column ours: claim beta differ (exactly)"]
