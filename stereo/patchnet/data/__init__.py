"""Patch datasets: the compact ``.npz`` formats, Brown/UBC folders, HPatches sheets, and
patches cut from photographs under known warps."""

from stereo.patchnet.data.brown import read_brown, read_brown_pairs, write_brown
from stereo.patchnet.data.hpatches import read_hpatches
from stereo.patchnet.data.patchset import PairSet, PatchSet, make_pairs
from stereo.patchnet.data.warped import warped_patch_set

__all__ = [
    "PairSet",
    "PatchSet",
    "make_pairs",
    "read_brown",
    "read_brown_pairs",
    "read_hpatches",
    "warped_patch_set",
    "write_brown",
]
