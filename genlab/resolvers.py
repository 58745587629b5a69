"""OmegaConf resolvers used by genlab's configs (registered when ``genlab.tasks`` is imported)."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

# Folder names are limited to 255 bytes on common file systems; a sweep over many overrides exceeds it.
MAX_DIRNAME = 120


def short_dirname(text: str, limit: int = MAX_DIRNAME) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus a hash of the whole (unique, stable)."""
    text = str(text)
    if len(text.encode()) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{text.encode()[: limit - 11].decode(errors='ignore')}~{digest}"


def register() -> None:
    """Register ``${short_dirname:...}`` (idempotent)."""
    if not OmegaConf.has_resolver("short_dirname"):
        OmegaConf.register_new_resolver("short_dirname", short_dirname)


register()
