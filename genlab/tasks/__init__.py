"""One module per CLI command; each exposes a Hydra ``main``."""

import genlab.resolvers  # noqa: F401  (registers the resolvers the configs use)
