"""Patch comparison: networks, losses, samplers, patch datasets, metrics and training.

This module knows nothing of the stereo pipeline (it never imports ``stereo.*`` outside
``stereo.patchnet`` and ``stereo.errors``).
"""
