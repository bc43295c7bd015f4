#!/usr/bin/env bash
# The prepared GPU session (issues 12 and 13): one call of at most 10 minutes on a lent CUDA
# machine (the workplace's `device` tool), with that machine's own python3 (PyTorch, OpenCV,
# SciPy, scikit-image ...). Every step writes under $OUT and a failed step does not stop the
# next one.
#
# Prepare here (the tool carries ignored folders only when named in `carry`):
#   .whl/                  gco-wrapper 3.0.9 (its cp311 wheel: the library is loaded by ctypes,
#                          so it is unpacked, not installed), kornia 0.9.0, kornia_rs 0.2.0 (cp312)
#   scratch/gpu_textures/  ../shared/data's texture folders (strecha/castle-P19/images, oxford/*)
# and leave in models/ only the weights the run uses (the working tree travels, 64 MiB at most).
# Then: run `bash benchmarks/gpu_session.sh` with carry [.whl, scratch/gpu_textures].
#
# Writes to $OUT:
#   machine.txt       nvidia-smi, CPU, python and torch versions
#   cuda_tests.log    the CUDA tests (every baseline and network family: CUDA equals the CPU)
#   gpu.md, gpu.json  `benchmarks/speed.py --gpu` rows measured within SPEED_S seconds
#   train.log, 2ch-deep.synthetic-stereo-2ch-xl.{pt,json}, log.jsonl
#                     2ch-deep fine-tuned on synthetic-stereo-2ch-xl until the budget ends
#                     (checkpoint.pt instead when training was cut off before its end)
set -u
OUT=${OUT:?set OUT to the folder that comes back}
BUDGET_S=${BUDGET_S:-560}   # the whole script, seconds
SPEED_S=${SPEED_S:-170}     # rows of the speed table start within this many seconds
GENERATE_S=${GENERATE_S:-150}  # time kept for the training set's generation, validation, saving
start=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - start))); }

mkdir -p /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/kornia*.whl
python3 -c "import glob, zipfile; zipfile.ZipFile(glob.glob('.whl/gco_wrapper*.whl')[0]).extractall('/tmp/site')"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p ../shared/data && cp -r scratch/gpu_textures/* ../shared/data/
{
    nvidia-smi
    lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-300
    python3 -c "import sys, torch, numpy, cv2; print(sys.version, torch.__version__, numpy.__version__, cv2.__version__)"
} >"$OUT/machine.txt" 2>&1

timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_dense.py -k cuda \
    >"$OUT/cuda_tests.log" 2>&1
echo "cuda tests done at $(($(date +%s) - start)) s" >>"$OUT/machine.txt"

timeout $((SPEED_S + 120)) python3 benchmarks/speed.py --gpu --threads 8 \
    --time-limit "$SPEED_S" --out "$OUT/gpu" >"$OUT/speed.log" 2>&1
echo "speed done at $(($(date +%s) - start)) s" >>"$OUT/machine.txt"

run=runs/shipped/2ch-deep.synthetic-stereo-2ch-xl
budget=$(left)
timeout "$budget" python3 benchmarks/train_models.py --model 2ch-deep \
    --train-set synthetic-stereo-2ch-xl --device cuda --no-default \
    --time-limit $((budget - GENERATE_S)) >"$OUT/train.log" 2>&1
echo "training ended ($?) at $(($(date +%s) - start)) s" >>"$OUT/machine.txt"
cp models/2ch-deep.synthetic-stereo-2ch-xl.pt models/2ch-deep.synthetic-stereo-2ch-xl.json \
    "$OUT/" 2>/dev/null || cp "$run/checkpoint.pt" "$OUT/" 2>/dev/null
cp "$run/log.jsonl" "$OUT/" 2>/dev/null
exit 0
