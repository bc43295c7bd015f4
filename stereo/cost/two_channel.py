"""2-channel costs: the second image warped to the reference for each hypothesis,
stacked with it and scored densely by the network."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from stereo.cost.base import Cost, dense_in_precision, resolve_precision
from stereo.cost.dense import DenseTwoChannel, normalise_image, upsample_grid
from stereo.cost.sampling import sample, to_tensor
from stereo.patchnet.models import PatchNet


class TwoChannelCost(Cost):
    """Minus the score of a 2-channel network on the reference and the warped second image.

    ``output_stride`` s > 1 (2ch, 2ch-deep): the network scores every s-th pixel of each
    hypothesis (its first strides kept, about 1/s² of the work) and the scores are
    interpolated bilinearly to every pixel."""

    #: the network's arithmetic, as :attr:`DescriptorCost.precision`
    precision: str = "auto"

    def __init__(
        self, model: PatchNet, device: str | torch.device = "cpu", output_stride: int = 1
    ) -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = model.name
        self.dense = DenseTwoChannel(self.model, output_stride)
        self.info: dict[str, str] = {}

    @torch.no_grad()
    def volume(self, reference, other, sweep, progress=False):
        mode = self.model.normalisation
        self.info = {"precision": resolve_precision(self.precision, self.device)}
        ref = normalise_image(to_tensor(reference, self.device), mode)
        src = to_tensor(other, self.device)[0]
        out = np.empty((len(sweep), sweep.height, sweep.width), np.float32)
        for label in tqdm(
            range(len(sweep)), desc=f"cost {self.name}", disable=not progress, leave=False
        ):
            warped, inside = sample(src, sweep.coordinates(label))
            pair = torch.cat([ref, normalise_image(warped[None], mode)], dim=1)
            score = dense_in_precision(self.dense, pair, self.precision, self.device)
            score = upsample_grid(score, self.dense.output_stride, *inside.shape)[0]
            score[~inside] = float("nan")
            out[label] = -score.cpu().numpy()
        return out
