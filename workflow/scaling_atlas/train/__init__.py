"""Training utilities shared by studies: device choice, checkpoints, progress."""
