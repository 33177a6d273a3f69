"""Public datasets: download from the authors' repositories at pinned commits, verify sha256.

``published_upstream.tsv`` lists every original file (repository, commit, path, bytes, sha256,
and the local file it feeds); ``published_mirror.sha256`` pins the local copies, including the
reshaped ones (Porian's pickles and Gadre's JSON files exported to CSV). A file is only ever
used after its sha256 matched the pin, whether it came from the network or a mirror.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import pandas as pd

from scaling_atlas.atomic import publish

DEFAULT_URL_BASE = "https://raw.githubusercontent.com"


class DataSourceError(RuntimeError):
    """A dataset could not be obtained or failed verification; the message says which and why."""


@dataclass(frozen=True)
class UpstreamFile:
    repository: str
    commit: str
    path: str
    sha256: str

    def url(self, base: str = DEFAULT_URL_BASE) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{self.path}"


def _table() -> pd.DataFrame:
    with resources.files(__package__).joinpath("published_upstream.tsv").open() as handle:
        return pd.read_csv(handle, sep="\t")


def mirror_pins() -> dict[str, str]:
    """Local file name → sha256 of the published copies."""
    text = resources.files(__package__).joinpath("published_mirror.sha256").read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line)}


def upstream_files(local_name: str) -> list[UpstreamFile]:
    table = _table()
    rows = table[table["used_for"].str.split(";").apply(lambda used: local_name in used)]
    return [UpstreamFile(r.repository, r.commit, r.path, r.sha256) for r in rows.itertuples()]


def is_verbatim(local_name: str) -> bool:
    """True when the local file is a byte-identical copy of one upstream file."""
    files = upstream_files(local_name)
    return len(files) == 1 and files[0].sha256 == mirror_pins().get(local_name)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_copy(write: Callable[[Path], None], dest: Path, sha256: str, what: str) -> Path:
    """Write to a temp file via ``write``, check its sha256, then move it to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(handle)
    try:
        write(Path(tmp))
        got = sha256_of(tmp)
        if got != sha256:
            raise DataSourceError(f"{what}: sha256 {got} does not match the pinned {sha256}")
        publish(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` (atomically) and verify it; a cached verified copy is reused."""
    if dest.exists() and sha256_of(dest) == sha256:
        return dest

    def write(tmp: Path):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise DataSourceError(f"download of {url} failed: {error}") from error

    return _verified_copy(write, dest, sha256, url)


def obtain(local_name: str, source: str, mirror_dir: str | None, cache_dir: str | os.PathLike,
           url_base: str = DEFAULT_URL_BASE, log: Callable[[str], None] = print) -> Path:
    """A verified local path for one published file.

    source ``download``: fetch the byte-identical upstream original at its pinned commit; if
    the network fails and a mirror is configured, fall back to the mirror (logged; the sha256
    is the same either way, so the science is too). source ``mirror``: read the mirror only.
    Reshaped files (Porian, Gadre) are taken from the mirror: rebuilding them from the
    upstream pickles/JSON is not implemented yet.
    """
    cache = Path(cache_dir)
    pin = mirror_pins().get(local_name)
    if pin is None:
        raise DataSourceError(f"no sha256 pin for {local_name!r}; is the name right?")
    problems = []
    if source == "download" and is_verbatim(local_name):
        upstream = upstream_files(local_name)[0]
        try:
            path = download(upstream.url(url_base), cache / local_name, upstream.sha256)
            log(f"{local_name}: downloaded {upstream.repository}@{upstream.commit[:7]}:"
                f"{upstream.path}, sha256 verified")
            return path
        except DataSourceError as error:
            problems.append(str(error))
            log(f"{local_name}: {error}; trying the mirror")
    elif source == "download":
        problems.append("rebuilding this reshaped file from its upstream originals is not "
                        "implemented; it needs a mirror copy")
    if mirror_dir:
        mirrored = Path(mirror_dir) / local_name
        if mirrored.exists():
            path = _verified_copy(lambda tmp: shutil.copyfile(mirrored, tmp), cache / local_name,
                                  pin, str(mirrored))
            log(f"{local_name}: copied from the mirror {mirrored}, sha256 verified")
            return path
        problems.append(f"mirror file {mirrored} does not exist")
    else:
        problems.append("no mirror_dir configured")
    raise DataSourceError(f"cannot obtain {local_name}: " + "; ".join(problems))
