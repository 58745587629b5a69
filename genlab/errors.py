"""User-facing errors: the CLI prints their message alone (no traceback) and exits non-zero."""


class GenlabError(ValueError):
    """A problem with the user's input (config, paths, files) that they can fix.

    The message must say what is wrong and what to do about it, in one short paragraph.
    """


class DatasetNotFoundError(GenlabError):
    """Dataset files are missing and could not be downloaded."""


class TrainingDivergedError(GenlabError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(Exception):
    """A run was stopped by a signal (Ctrl-C, SIGTERM); its status is recorded and it can be resumed.

    Not a user error: the command exits with ``exit_code`` (128 + the signal number, as shells do).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def message_of(error: BaseException) -> str:
    """The message of an error, also when a DataLoader worker re-raised it with the worker's traceback
    (torch raises the same type with the text "Caught X in DataLoader worker ... Original Traceback ...")."""
    text = str(error)
    if "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text
