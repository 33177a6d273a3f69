"""Figure helpers shared by studies."""

from scaling_atlas.figures.style import label_widths, new_figure, save_figure

__all__ = ["label_widths", "new_figure", "save_figure"]
