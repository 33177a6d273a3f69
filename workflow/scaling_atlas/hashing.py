"""The one hashing function: run ids, config fingerprints and provenance hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(value: Any, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 of the canonical JSON of ``value``.

    Canonical means sorted keys, compact separators and floats written by ``repr``, so 0.1 and
    0.10 agree and a reordered config gives the same hash (and so reuses finished results);
    values JSON cannot write (paths, numpy scalars) are written with ``str``.
    """
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]
