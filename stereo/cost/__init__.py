"""Matching costs: how two images compare under every hypothesis of a sweep.

* ``base`` — :class:`~stereo.cost.base.Cost` (what every cost is), dense runs in strips and
  the arithmetic (float32 / bfloat16) networks run in.
* ``sampling`` — reading a map at a hypothesis' coordinates (PyTorch or OpenCV).
* ``dense`` — patch networks rewritten to run fully convolutionally over whole images.
* ``descriptor`` — learned descriptor costs (siam, siam-l2, cnn3, l2net, …).
* ``two_channel`` — 2-channel network costs (2ch, 2ch-deep, 2ch-2stream).
* ``handmade`` — the baselines: ZNCC, census, dense DAISY, dense SIFT.
* ``fused`` — the mean of several costs' normalised volumes.

The hypotheses themselves (:class:`~stereo.geometry.sweep.Sweep`, the pre-warp) are geometry.
"""
