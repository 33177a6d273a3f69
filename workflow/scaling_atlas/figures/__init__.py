"""Figure helpers shared by studies."""

from scaling_atlas.figures.style import new_figure, save_figure

__all__ = ["new_figure", "save_figure"]
