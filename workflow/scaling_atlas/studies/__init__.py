"""Study registry: study kind → class. Add a study by adding its module here; no new rules."""

from __future__ import annotations


def _registry() -> dict[str, type]:
    from scaling_atlas.studies.backtest import BacktestStudy
    from scaling_atlas.studies.compute_optimal import ComputeOptimalStudy
    from scaling_atlas.studies.data_selection import DataSelectionStudy
    from scaling_atlas.studies.emergence import EmergenceStudy
    from scaling_atlas.studies.matrix_sensing import MatrixSensingStudy
    from scaling_atlas.studies.published import PublishedStudy
    from scaling_atlas.studies.resolution import ResolutionStudy
    from scaling_atlas.studies.runs import RunsStudy
    from scaling_atlas.studies.superposition import SuperpositionStudy
    from scaling_atlas.studies.superposition_lm import SuperpositionLMStudy

    return {cls.kind: cls for cls in (SuperpositionStudy, PublishedStudy, MatrixSensingStudy,
                                           ComputeOptimalStudy, SuperpositionLMStudy, EmergenceStudy,
                                           ResolutionStudy, DataSelectionStudy, RunsStudy,
                                           BacktestStudy)}


def study_class(kind: str) -> type:
    registry = _registry()
    if kind not in registry:
        raise KeyError(f"unknown study kind {kind!r}; known: {', '.join(sorted(registry))}")
    return registry[kind]


def get_study(name: str, config: dict):
    """The study instance ``name`` of a validated config."""
    section = config["studies"][name]
    return study_class(section["kind"])(name, section, config)
