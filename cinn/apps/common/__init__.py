"""Pieces every app shares: image files, grids, padding, data sets, training runs."""
