"""Generating training data pair by pair in worker processes that share one texture pool.

Each worker reads the texture pool (:func:`~stereo.datasets.random_scenes.texture_pool`) once
into :data:`TEXTURES`; a task function of a generator module reads it from there.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
from tqdm.auto import tqdm

from stereo.datasets.random_scenes import texture_pool

#: the texture pool of this process (filled by :func:`init_worker`)
TEXTURES: list = []


def init_worker(folders: Sequence[str], one_thread: bool = False) -> None:
    """Read the texture pool once per process; ``one_thread``: OpenCV runs on one thread (a
    pool worker: the pool already fills the cores)."""
    if one_thread:
        cv2.setNumThreads(1)
    TEXTURES[:] = texture_pool(folders)


def map_pairs(
    task: Callable[[Any], Any],
    tasks: Sequence[Any],
    texture_folders: Sequence[str | Path],
    workers: int,
    progress: bool,
    description: str,
) -> list[Any]:
    """``[task(t) for t in tasks]`` in order, in ``workers`` processes when > 1, each with the
    texture pool of ``texture_folders`` loaded. The workers are spawned, not forked: a script
    calling this must guard its entry point with ``if __name__ == "__main__":``."""
    folders = [str(f) for f in texture_folders]
    # read here first: a bad folder or image is then the caller's one-line StereoError, not a
    # worker's failed initializer (a BrokenProcessPool traceback)
    init_worker(folders)
    if workers <= 1:
        return [task(t) for t in tqdm(tasks, desc=description, disable=not progress)]
    # fresh ("spawn") workers: a fork of a process whose OpenCV and torch thread pools have
    # run can deadlock (a forked CI run hung here twice, in sessions 18 and 19)
    executor = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(folders, True),
    )
    with executor:
        return list(
            tqdm(
                executor.map(task, tasks), total=len(tasks), desc=description, disable=not progress
            )
        )
