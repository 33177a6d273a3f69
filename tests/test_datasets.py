"""Downloads are verified against pinned sha256s; tested on local files (file:// URLs)."""

import shutil

import pytest

from scaling_atlas.datasets import (
    DataSourceError,
    is_verbatim,
    mirror_pins,
    obtain,
    sha256_of,
    upstream_files,
)

from conftest import REPO

MIRROR = REPO.parent / "shared" / "data" / "published"
EPOCH = "chinchilla_besiroglu2024_svg_extracted_data.csv"
pytestmark = pytest.mark.skipif(not MIRROR.exists(), reason="needs ../shared/data/published")


@pytest.fixture
def fake_github(tmp_path):
    """A local tree laid out like raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>."""
    root = tmp_path / "github"
    for name in (EPOCH, "luo2025_mpl_loss_curves/N25M_wsdcon_3.csv"):
        upstream = upstream_files(name)[0]
        target = root / upstream.repository / upstream.commit / upstream.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MIRROR / name, target)
    return root


def test_pins_cover_every_published_file_and_match_the_mirror():
    pins = mirror_pins()
    # every data file of the mirror: 31 for the refits, the rest for the registry
    assert len(pins) == 49
    assert set(pins) == {line.split()[1] for line in (MIRROR / "SHA256SUMS").read_text().splitlines()
                         if line.split()[1] not in ("README.md", "upstream_sources.tsv")}
    for name, digest in pins.items():
        assert sha256_of(MIRROR / name) == digest, name
    assert is_verbatim(EPOCH) and not is_verbatim("porian2024_optimal_pairs.csv")
    assert is_verbatim("openathena_isoflops_extract.csv")
    assert is_verbatim("li2025_misfitting_scaling_results_last_ckpt_only.csv")
    assert len(upstream_files("gadre2024_overtraining_models.csv")) == 208


def test_download_from_the_pinned_commit_is_verified(fake_github, tmp_path):
    messages = []
    path = obtain(EPOCH, "download", None, tmp_path / "cache", f"file://{fake_github}", messages.append)
    assert sha256_of(path) == mirror_pins()[EPOCH]
    assert "downloaded epoch-research/analyzing-chinchilla@9225883" in messages[0]


def test_a_tampered_download_is_refused_and_leaves_nothing(fake_github, tmp_path):
    upstream = upstream_files(EPOCH)[0]
    target = fake_github / upstream.repository / upstream.commit / upstream.path
    target.write_text(target.read_text().replace("5.005581996196243", "5.1"))
    with pytest.raises(DataSourceError, match="sha256 .* does not match the pinned"):
        obtain(EPOCH, "download", None, tmp_path / "cache", f"file://{fake_github}", print)
    assert not any((tmp_path / "cache").rglob("*.csv"))


def test_network_failure_falls_back_to_the_verified_mirror(tmp_path):
    messages = []
    path = obtain(EPOCH, "download", str(MIRROR), tmp_path / "cache", f"file://{tmp_path}/nowhere",
                  messages.append)
    assert sha256_of(path) == mirror_pins()[EPOCH]
    assert "trying the mirror" in messages[0] and "copied from the mirror" in messages[1]


def test_mirror_only_and_missing_mirror(tmp_path):
    path = obtain("porian2024_optimal_pairs.csv", "mirror", str(MIRROR), tmp_path / "c", log=print)
    assert path.exists()
    with pytest.raises(DataSourceError, match="mirror file .* does not exist"):
        obtain(EPOCH, "mirror", str(tmp_path / "empty"), tmp_path / "c", log=print)
    with pytest.raises(DataSourceError, match="not implemented; it needs a mirror copy"):
        obtain("gadre2024_overtraining_models.csv", "download", None, tmp_path / "c", log=print)
    with pytest.raises(DataSourceError, match="no sha256 pin for 'nope.csv'"):
        obtain("nope.csv", "mirror", str(MIRROR), tmp_path / "c", log=print)


def test_a_corrupted_mirror_copy_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / EPOCH).write_text("x,y\n1,2\n")
    with pytest.raises(DataSourceError, match="does not match the pinned"):
        obtain(EPOCH, "mirror", str(mirror), tmp_path / "c", log=print)


def test_the_published_study_needs_only_its_own_files_in_a_mirror(tmp_path):
    """The registry pins every mirror file; the published study asks only for those it reads."""
    from scaling_atlas.studies.published import FILES, PublishedStudy

    mirror = tmp_path / "mirror"
    for name in FILES:
        (mirror / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MIRROR / name, mirror / name)
    assert set(FILES) < set(mirror_pins())  # the registry's files are pinned but not needed here
    section = {"source": "mirror", "mirror_dir": str(mirror)}
    assert PublishedStudy("published", section, {}).validate() == []
    (mirror / EPOCH).unlink()
    assert PublishedStudy("published", section, {}).validate() == [
        f"mirror_dir: {mirror} lacks {EPOCH} (rule: mirror needed)"]
