"""Declaring a setting once: a dataclass field that carries its command-line option.

A configuration dataclass (:class:`~stereo.config.StereoConfig`,
:class:`~stereo.mrf.graphcut.MRFConfig`) declares each knob with :func:`setting` — its
default, unit and help text, and the option that sets it. ``stereo-match`` builds its options
from these declarations (:func:`cli_fields`), so a knob is declared in exactly one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OptionSpec:
    """How a setting appears on the command line."""

    flag: str  # "--labels"; a boolean with ``negative`` becomes "--flag/--negative"
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    nargs: int = 1
    negative: str | None = None  # the off-switch of a boolean ("--no-sublabel")
    kind: type | None = None  # the option's value type (int, float, str) when not a choice


def setting(
    default: Any = dataclasses.MISSING,
    *,
    flag: str | None = None,
    help: str = "",
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    nargs: int = 1,
    negative: str | None = None,
    kind: type | None = None,
) -> Any:
    """A dataclass field with its default and, when ``flag`` is given, the command-line
    option that sets it (``help`` says what it does and in which unit)."""
    spec = OptionSpec(flag, help, choices, metavar, nargs, negative, kind) if flag else None
    return dataclasses.field(default=default, metadata={"option": spec, "help": help})


def cli_fields(cls: type) -> Iterator[tuple[dataclasses.Field, OptionSpec]]:
    """The fields of a configuration dataclass that have a command-line option, in order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is not None:
            yield f, spec
