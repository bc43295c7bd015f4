"""The one exception type for bad user input.

Every function that validates user input (files, names, shapes, options) raises
:class:`StereoError` with a one-line message that names the problem and what would fix it.
Command-line entry points print it as ``Error: …`` and exit with status 1 (click's own usage
errors — an unknown option, a missing argument — exit with 2) — never a traceback.
"""

from __future__ import annotations


class StereoError(Exception):
    """Bad input or an unrecoverable condition, described in one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def one_line_errors(fn):
    """Decorator for command bodies: a :class:`StereoError` becomes ``Error: …`` (exit 1)."""
    import functools

    import click

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StereoError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def error_reporting_group():
    """A ``click.Group`` class whose commands report :class:`StereoError` in one line."""
    import click

    class ErrorReportingGroup(click.Group):
        def invoke(self, ctx: click.Context):
            return one_line_errors(super().invoke)(ctx)

    return ErrorReportingGroup


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)``, so that ``finally`` blocks and context
    managers run (a killed run removes its half-written output, as on Ctrl-C)."""
    import signal
    import sys

    def stop(signum: int, frame: object) -> None:
        print("Error: stopped by SIGTERM; nothing was written", file=sys.stderr)
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)
