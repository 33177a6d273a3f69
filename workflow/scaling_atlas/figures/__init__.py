"""Figure helpers shared by studies."""

from scaling_atlas.figures.style import label_widths, new_figure, new_panel, save_figure, size_colours

__all__ = ["label_widths", "new_figure", "new_panel", "save_figure", "size_colours"]
