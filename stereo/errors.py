"""The one exception type for bad user input.

Every function that validates user input (files, names, shapes, options) raises
:class:`StereoError` with a one-line message that names the problem and what would fix it.
Command-line entry points print the message and exit with status 2 — never a traceback.
"""

from __future__ import annotations


class StereoError(Exception):
    """Bad input or an unrecoverable condition, described in one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
