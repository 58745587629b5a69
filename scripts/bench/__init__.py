"""genlab's benchmark suite: ``python -m scripts.bench`` (see ``__main__`` for the sections and options)."""
