#!/bin/bash
# The patch table's single-scene splits: cnn3, l2net and 2ch-2stream trained on the keypoint
# patches of fountain-P11 alone and of Herz-Jesu-P8 alone (each model's own recipe, as
# train_models.py trains it on castle+oxford), written to runs/patch_splits/SCENE/ where
# benchmarks/patches.py finds them. The two scenes train side by side, one thread each:
# ~50 minutes on 2 cores. Needs datasets/patches (benchmarks/README.md, "Patch datasets").
set -euo pipefail
cd "$(dirname "$0")/.."
for scene in fountain-P11 Herz-Jesu-P8; do
    if [ ! -f "datasets/patches/$scene.npz" ]; then
        echo "error: datasets/patches/$scene.npz missing; build it with stereo-dataset build" \
            "(benchmarks/README.md, Patch datasets)" >&2
        exit 1
    fi
done
export OMP_NUM_THREADS=1
ADAM=(--set optimizer=adam --set lr=0.001 --set momentum=0 --set weight_decay=0
      --set lr_step=0 --set checkpoint_every=200)
train() {  # MODEL SCENE RECIPE STEPS [more --set ...]
    local model=$1 scene=$2 recipe=$3 steps=$4
    shift 4
    stereo-patches train "$model" --data "datasets/patches/$scene.npz" --recipe "$recipe" \
        "${ADAM[@]}" --set val_every=$((steps / 4)) --steps "$steps" "$@" \
        --out "runs/patch_splits/$scene" --name "$model.$scene.pt" --half
}
mkdir -p runs/patch_splits
pids=()
for scene in fountain-P11 Herz-Jesu-P8; do
    (
        train cnn3 "$scene" deepdesc 650 --set batch_size=64
        train l2net "$scene" l2net 700
        train 2ch-2stream "$scene" deepcompare-adam 1400
    ) > "runs/patch_splits/$scene.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "error: a training run failed; see runs/patch_splits/*.log" >&2; exit 1; }
done
