"""Scaling Atlas: reproducible re-derivations of neural scaling laws."""

__version__ = "0.1.0"
