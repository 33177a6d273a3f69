"""The needle task's definition (no PyTorch): a canvas, a glyph, the patch and glimpse sizes,
and why a combination cannot be built. The images, models and trainer are
:mod:`scaling_atlas.resolution.needle`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class NeedleTask:
    canvas: int  # R: side of the image in pixels
    glyph: int = 4  # side of a glyph in pixels
    classes: int = 4
    lit: int = 8  # lit pixels per glyph (equal for all: equal mean brightness)
    amplitude: float = 2.0  # brightness of a lit pixel, in units of the noise σ
    patch: int = 8  # P: side of a high-resolution patch
    glimpse: int = 32  # G: side of the low-resolution view

    def __post_init__(self):
        problems = task_problems(self.canvas, self.glyph, self.patch, self.glimpse, self.classes,
                                 self.lit)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def patches_per_side(self) -> int:
        return self.canvas // self.patch


def task_problems(canvas: int, glyph: int, patch: int, glimpse: int, classes: int = 4,
                  lit: int = 8) -> list[str]:
    """Why a task cannot be built, as readable problems (config validation uses these)."""
    problems = []
    if canvas < glyph:
        problems.append(f"canvas {canvas} px is smaller than the glyph ({glyph} px)")
    if canvas % patch:
        problems.append(f"canvas {canvas} px is not a multiple of the patch size {patch}")
    if canvas < glimpse or canvas % glimpse:
        problems.append(f"canvas {canvas} px is not a multiple of the glimpse side {glimpse} px "
                        "(the glimpse averages whole blocks of pixels)")
    if not 0 < lit < glyph * glyph:
        problems.append(f"lit = {lit} must be between 1 and glyph² − 1 = {glyph * glyph - 1}")
    elif math.comb(glyph * glyph, lit) < classes:
        problems.append(f"only {math.comb(glyph * glyph, lit)} glyphs of {lit} lit pixels exist, "
                        f"fewer than {classes} classes")
    return problems
