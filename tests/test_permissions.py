"""Outputs honour the umask (issue #19, item 8): atomic writes go through ``mkstemp``, which
creates 0600 files; a colleague on a shared cluster must be able to read the results."""

import os
import stat

import pytest

from scaling_atlas.atomic import atomic_path, write_text
from scaling_atlas.datasets import _verified_copy, sha256_of


@pytest.fixture
def umask():
    def set_mask(mask):
        old = os.umask(mask)
        restore.append(old)

    restore = []
    yield set_mask
    for old in restore:
        os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_get_the_umask_mode(tmp_path, umask, mask, mode):
    umask(mask)
    write_text(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "b.nc") as tmp:
        tmp.write_bytes(b"data")
    for name in ("a.txt", "b.nc"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_verified_downloads_get_the_umask_mode(tmp_path, umask):
    umask(0o022)
    source = tmp_path / "source.csv"
    source.write_text("a,b\n1,2\n")
    dest = _verified_copy(lambda tmp: tmp.write_bytes(source.read_bytes()), tmp_path / "d.csv",
                          sha256_of(source), "test")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
