"""Runs and shards: stable ids from parameters, grouping runs into training jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable

from scaling_atlas.hashing import stable_hash


@dataclass(frozen=True)
class Run:
    """One training run: its scientific parameters and the id derived from them."""

    params: dict[str, Any] = field(hash=False)
    run_id: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Run":
        return cls(params=dict(params), run_id=stable_hash(params, 12))

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
            digest = stable_hash({"runs": [r.run_id for r in chunk]}, 8)
            shards[f"{label(chunk[0])}-{digest}"] = chunk
    return shards
