"""Hydra configs shipped with genlab (the top-level configs/ folder)."""
