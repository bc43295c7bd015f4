"""One progress report across a run's stages: a line per stage on the ``stereo`` logger.

Every stage (geometry, cost volume, MRF, left-right check, writing) ends with one line,
``stage: seconds``; the cost volume also says when it starts and what it computes. The
commands send the logger to stderr (``stereo-match --quiet`` silences it), so a run piped to
a file or a batch system shows where it is; on a terminal the per-label progress bars come
on top.
"""

from __future__ import annotations

import logging
import sys
import time

LOG = logging.getLogger("stereo")


def stage_done(times: dict[str, float], name: str, start: float) -> float:
    """Record stage ``name`` as having run since ``start`` (``time.time()``) in ``times``
    (seconds), log its line, and return the time now (the next stage's start)."""
    now = time.time()
    times[name] = now - start
    LOG.info("%s: %.1f s", name.replace("_", " "), times[name])
    return now


def stage_started(name: str, detail: str) -> None:
    """Log that a long stage begins, with what it computes."""
    LOG.info("%s: %s …", name.replace("_", " "), detail)


def log_to_stderr(program: str, quiet: bool = False) -> None:
    """Send the ``stereo`` logger to stderr as ``program: message`` lines (nothing when
    ``quiet``)."""
    LOG.handlers.clear()
    LOG.propagate = False
    if quiet:
        LOG.setLevel(logging.WARNING)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{program}: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
