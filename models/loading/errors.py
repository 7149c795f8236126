"""The one error type every loader raises for a bad file, so callers can catch a single class."""
from __future__ import annotations

from os import PathLike


class ModelFileError(ValueError):
    """A model file is missing, malformed, unsafe or not the file the caller expected.

    The message always starts with the file, because users meet these errors in a UI where the
    traceback is hidden and "which file?" is the first question.
    """

    def __init__(self, file: str | PathLike[str], message: str):
        self.file = str(file)
        self.detail = message
        super().__init__(f"{self.file}: {message}")
