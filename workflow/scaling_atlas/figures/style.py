"""One look for every figure, and saving to PNG and PDF together."""

from __future__ import annotations

import os

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: workflow jobs and CI have no display
import matplotlib.pyplot as plt

from scaling_atlas.atomic import atomic_path

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.4, **kw):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
            layout="constrained", **kw,
        )
    return fig, axes


def new_panel(width: float = 4.2, height: float = 3.4, **kw):
    """One figure with one axes: ``fig, ax = new_panel()``."""
    fig, axes = new_figure(width=width, height=height, **kw)
    return fig, axes[0, 0]


#: no creation date or tool version in the files: the same figure gives the same bytes
REPRODUCIBLE_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None,
                                                            "Creator": None}}


def save_figure(fig, png_path: str | os.PathLike, pdf_path: str | os.PathLike) -> None:
    for path, kind in ((png_path, "png"), (pdf_path, "pdf")):
        with plt.rc_context(STYLE), atomic_path(path) as tmp:
            fig.savefig(tmp, metadata=REPRODUCIBLE_METADATA[kind])
    plt.close(fig)


def label_widths(ax, widths) -> None:
    """Log-scaled width axis labelled at the widths themselves, not at powers of ten."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(list(widths)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{int(w)}" for w in widths])


def size_colours(n: int) -> list:
    """n colours from light to dark (small to large models), one per model size."""
    return [matplotlib.colormaps["viridis"](x) for x in np.linspace(0.9, 0.1, n)]
