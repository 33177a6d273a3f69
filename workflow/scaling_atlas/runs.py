"""Runs and shards: stable ids from parameters, grouping runs into training jobs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable


def stable_id(params: dict[str, Any], length: int = 12) -> str:
    """First ``length`` hex digits of the SHA-256 of the canonical JSON of ``params``.

    Canonical means sorted keys and floats written by ``repr``, so 0.1 and 0.10 agree and a
    reordered config gives the same ids (and so reuses finished results).
    """
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Run:
    """One training run: its scientific parameters and the id derived from them."""

    params: dict[str, Any] = field(hash=False)
    run_id: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Run":
        return cls(params=dict(params), run_id=stable_id(params))

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


def group_into_shards(
    runs: Iterable[Run], shape_key: Callable[[Run], Hashable], label: Callable[[Run], str],
    max_runs: int,
) -> dict[str, list[Run]]:
    """Group runs of equal shape, split each group into chunks of at most ``max_runs``.

    A shard's id is ``<label>-<hash of its member run ids>``: readable, and unchanged as long as
    its members are, so editing one corner of a grid does not retrain the rest.
    """
    groups: dict[Hashable, list[Run]] = {}
    for run in runs:
        groups.setdefault(shape_key(run), []).append(run)
    shards = {}
    for key in sorted(groups, key=repr):
        members = sorted(groups[key], key=lambda r: r.run_id)
        for start in range(0, len(members), max_runs):
            chunk = members[start : start + max_runs]
            digest = stable_id({"runs": [r.run_id for r in chunk]}, length=8)
            shards[f"{label(chunk[0])}-{digest}"] = chunk
    return shards
