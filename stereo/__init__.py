"""Dense wide-baseline stereo matching on learned patch comparison.

Sub-packages:

* :mod:`stereo.patchnet` — patch-comparison networks (DeepCompare, DeepDesc, L2-Net), their
  losses, samplers, patch datasets, descriptor metrics and training. It never imports the
  stereo pipeline.
"""

__version__ = "0.1.0"
