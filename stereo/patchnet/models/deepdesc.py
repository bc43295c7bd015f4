"""DeepDesc CNN3 (Simo-Serra et al., ICCV 2015), REFERENCE.md §2.

64×64 → C(32,7) tanh, L2-pool 2×2, subtractive norm (5×5 Gaussian) → C(64,6) tanh,
L2-pool 3×3, subtractive norm → C(128,5) tanh, L2-pool 4×4 → 128-D, compared by L2 distance.

The paper's 46,272 parameters come from sparse random connection tables; this is the densely
connected version (280,320 parameters), which REFERENCE.md notes as "about 280K".
"""

from __future__ import annotations

from torch import Tensor, nn

from stereo.patchnet.models.base import DescriptorNet
from stereo.patchnet.models.layers import L2Pool, SubtractiveNorm


class CNN3(DescriptorNet):
    """DeepDesc CNN3: 128-D descriptor, score ``−‖a − b‖₂`` (descriptors not normalised)."""

    normalisation = "standardise"
    descriptor_size = 128

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 7),
            nn.Tanh(),
            L2Pool(2),
            SubtractiveNorm(5),
            nn.Conv2d(32, 64, 6),
            nn.Tanh(),
            L2Pool(3),
            SubtractiveNorm(5),
            nn.Conv2d(64, 128, 5),
            nn.Tanh(),
            L2Pool(4),
        )

    def embed(self, x: Tensor) -> Tensor:
        """``(B, 1, 64, 64)`` normalised → ``(B, 128)``."""
        return self.features(x).flatten(1)
