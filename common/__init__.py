"""The lowest layer: paths, progress lines, metrics and small helpers every other package may use."""
