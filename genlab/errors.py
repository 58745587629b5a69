"""User-facing errors: the CLI prints their message alone (no traceback) and exits non-zero."""


class GenlabError(ValueError):
    """A problem with the user's input (config, paths, files) that they can fix.

    The message must say what is wrong and what to do about it, in one short paragraph.
    """


class DatasetNotFoundError(GenlabError):
    """Dataset files are missing and could not be downloaded."""


class TrainingDivergedError(GenlabError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
