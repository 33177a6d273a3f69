"""Law fitting. Issue #2 provides the power law in width; #3 grows this into the full engine."""

from scaling_atlas.laws.powerlaw import PowerLaw, fit_power_law_over

__all__ = ["PowerLaw", "fit_power_law_over"]
