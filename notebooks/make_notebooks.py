"""Write the notebooks from their cell sources (run: python notebooks/make_notebooks.py).

Keeping the sources here keeps the notebooks reviewable as Python; the .ipynb files are
what users open. Both read ``NOTEBOOK_SIZE`` (working size, pixels) so CI can run them small.
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent


def notebook(cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                for kind, src in cells]
    return nb


DEPTH = [
    ("md", "# Depth-map walkthrough\n\nFrom two calibrated images to a depth map: the plane "
     "sweep, the cost volume of a learned patch network, winner-take-all against the graph-cut "
     "MRF, and the error against the ground truth. It runs on the embedded rendered scene "
     "(exact depth, no download); set `SCENE` to a Strecha scene folder to use real data."),
    ("code", """import os
import matplotlib.pyplot as plt
import numpy as np

from stereo.datasets.synthetic import make_scene
from stereo.evaluation import dense_truth, depth_correctness
from stereo.mrf.graphcut import MRFConfig
from stereo.config import StereoConfig
from stereo.pipeline import match_calibrated

SIZE = int(os.environ.get("NOTEBOOK_SIZE", "384"))  # working size (long side), pixels
MODEL = os.environ.get("NOTEBOOK_MODEL", "l2net.synthetic-stereo")  # falls back to zncc without weights
scene = make_scene(2, width=SIZE, height=SIZE * 3 // 4, baseline=0.6)
reference, other = scene.images
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
for ax, img, title in zip(axes, [reference, other, scene.depths[0]],
                          ["reference", "second view", "true depth (m)"]):
    im = ax.imshow(img, cmap="gray" if img.dtype == np.uint8 else "turbo_r")
    ax.set_title(title); ax.axis("off")
fig.colorbar(im, ax=axes[2], fraction=0.04)
plt.show()"""),
    ("md", "## Cost volume and cost curves\n\nEvery pixel gets a cost for each of the depth "
     "hypotheses (planes uniform in inverse depth). The curves at a few pixels show where the "
     "network is sure (one sharp minimum) and where it is not (flat or several minima)."),
    ("code", """from stereo.patchnet.weights import load_model
try:
    load_model(MODEL)
except Exception as error:  # no shipped weights in this checkout
    print(f"{MODEL}: {error}; using zncc")
    MODEL = "zncc"
depth_range = (float(np.nanmin(scene.depths[0])) / 1.05, float(np.nanmax(scene.depths[0])) * 1.05)
config = StereoConfig(model=MODEL, n_labels=48, depth_range=depth_range, working_size=SIZE)
result = match_calibrated(reference, other, scene.cameras[0], scene.cameras[1], config)
print(result.report["seconds"])
pixels = [(SIZE * 3 // 8, SIZE // 4), (SIZE * 3 // 8, SIZE * 3 // 4), (SIZE // 8, SIZE // 2)]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4))
ax0.imshow(reference, cmap="gray")
for (y, x), c in zip(pixels, "rgb"):
    ax0.plot(x, y, "o", color=c)
    ax1.plot(result.depths, result.volume[:, y, x], color=c, label=f"pixel ({x}, {y})")
    ax1.axvline(scene.depths[0][y, x], color=c, ls="--")
ax1.set_xlabel("depth hypothesis (m)"); ax1.set_ylabel("normalised cost"); ax1.legend()
ax0.axis("off"); plt.show()"""),
    ("md", "## Winner-take-all against the graph-cut MRF"),
    ("code", """wta = match_calibrated(reference, other, scene.cameras[0], scene.cameras[1],
                       StereoConfig(model=MODEL, n_labels=48, depth_range=depth_range,
                                    working_size=SIZE, optimizer="wta"))
truth = dense_truth(scene.depths[0], step=2)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for ax, r, name in zip(axes, [wta, result], ["winner-take-all", "graph cut"]):
    m = depth_correctness(r.depth, truth)
    ax.imshow(r.depth, cmap="turbo_r"); ax.axis("off")
    ax.set_title(f"{name}: correct@0.05 = {m['correct@0.05']:.3f}")
plt.show()
print("energy: winner-take-all", result.report["energy_wta"], "-> graph cut",
      result.report["energy_final"])"""),
    ("md", "## Error against the ground truth"),
    ("code", """error = np.abs(result.depth - scene.depths[0])
tau = 0.05 * (np.nanmax(scene.depths[0]) - np.nanmin(scene.depths[0]))
fig, ax = plt.subplots(figsize=(7, 5))
im = ax.imshow(error, cmap="magma", vmax=3 * tau); ax.axis("off")
ax.set_title(f"|depth error| (m); tau = {tau:.2f} m")
fig.colorbar(im, ax=ax, fraction=0.04); plt.show()
print({k: round(v, 3) for k, v in depth_correctness(result.depth, truth).items()})"""),
]

GALLERY = [
    ("md", "# Patch-network gallery\n\nPairs of patches with the scores a network gives them, "
     "and the hardest positives and negatives: matching pairs it scores lowest and "
     "non-matching pairs it scores highest. Patches come from the embedded photographs under "
     "known warps, or from a pair file (`PAIRS=…npz`)."),
    ("code", """import os
import matplotlib.pyplot as plt
import numpy as np

from stereo.patchnet.data import PairSet, make_pairs, warped_patch_set
from stereo.patchnet.evaluate import score_index_pairs
from stereo.patchnet.metrics import pair_metrics
from stereo.patchnet.train import score_pairs
from stereo.patchnet.weights import load_model

N = int(os.environ.get("NOTEBOOK_PAIRS", "400"))
MODEL = os.environ.get("NOTEBOOK_MODEL", "siam-l2")
pairs_file = os.environ.get("PAIRS")
pairs = PairSet.load(pairs_file) if pairs_file else make_pairs(warped_patch_set(N, 2, seed=3), N)
try:
    model = load_model(MODEL)
except Exception as error:
    print(f"{error}; using an untrained network so the notebook still runs")
    model = load_model(MODEL, untrained=True)
scores = score_pairs(model, pairs)
print(MODEL, {k: round(v, 4) if isinstance(v, float) else v
              for k, v in pair_metrics(scores, pairs.label).items()})"""),
    ("code", """def show(indices, title):
    fig, axes = plt.subplots(2, len(indices), figsize=(1.6 * len(indices), 3.6))
    for col, i in enumerate(indices):
        for row, patch in enumerate([pairs.a[i], pairs.b[i]]):
            axes[row, col].imshow(patch, cmap="gray", vmin=0, vmax=255)
            axes[row, col].axis("off")
        axes[0, col].set_title(f"{scores[i]:.2f}", fontsize=9)
    fig.suptitle(title); plt.show()

pos, neg = np.nonzero(pairs.label == 1)[0], np.nonzero(pairs.label == 0)[0]
show(pos[:8], "matching pairs (score above each)")
show(neg[:8], "non-matching pairs")
show(pos[np.argsort(scores[pos])[:8]], "hardest positives: matching pairs scored lowest")
show(neg[np.argsort(-scores[neg])[:8]], "hardest negatives: non-matching pairs scored highest")"""),
    ("code", """fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(scores[pos], bins=40, alpha=0.6, label="matching")
ax.hist(scores[neg], bins=40, alpha=0.6, label="non-matching")
ax.set_xlabel("score"); ax.legend(); plt.show()"""),
]

if __name__ == "__main__":
    nbf.write(notebook(DEPTH), HERE / "depth_walkthrough.ipynb")
    nbf.write(notebook(GALLERY), HERE / "patch_gallery.ipynb")
