"""Reading and writing the files the project uses, each with its checks.

``images`` decodes photographs strictly (a truncated or corrupt file is refused, never
filled in); ``jsonfile`` writes JSON that stays valid (no NaN or Infinity); ``outputs``
writes a run's result folder as one unit. A base layer: it imports nothing of the stereo
pipeline, so ``stereo.patchnet`` may use it too.
"""
