#!/usr/bin/env bash
# agvm_mm's checks on a machine with a CUDA GPU, in one command (meant to
# finish within 8 minutes on one GPU; CI never has one):
#   1. the CUDA tests (pytest -m cuda, tests/test_cuda.py): AMP fp16 and
#      bf16 Phi against fp32, an overflowing fp16 step, NCCL with world size
#      1, and the DDP communication hook on CUDA tensors (two ranks on one
#      GPU over gloo: NCCL refuses that);
#   2. tools/train.py --amp (AGVMAmpOptimWrapper, fp16) on the shapes
#      RetinaNet and Faster R-CNN, 200 iterations each, then validation;
#   3. the overhead benchmark on mmdet's stock Faster R-CNN R50-FPN, fp32
#      and fp16 AMP (one process, 2 accumulated micro-batches of 2 images of
#      800 x 1344; plain and AGVM interleaved by whole intervals).
#
#   bash tools/gpu_check.sh            # prints each part's output and time
#
# Install first: README.md, section "Install on GPUs" (the steps and what
# worked on an H200: docs/install.md, section GPU).
# Python: $PYTHON if set, else .venv/bin/python (tools/install.sh with
# AGVM_CUDA=1), else python3 with the stack on its path. On a machine
# without a package registry, a folder .gpuwhl/ of wheels (the OpenMMLab
# stack, an mmcv built with CUDA ops, pytest) is installed into
# /tmp/agvm_site when the stack is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if ! "$PY" -c "import mmcv.ops, mmdet, mmseg, pytest" 2>/dev/null; then
  if ls .gpuwhl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile \
      --target /tmp/agvm_site .gpuwhl/*.whl
    export PYTHONPATH=/tmp/agvm_site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "[gpu check] mmcv (with CUDA ops), mmdet, mmseg or pytest missing:" \
      "install them first (README.md, Install on GPUs)" >&2
    exit 1
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" - <<'EOF'
import torch, mmcv, mmdet, mmseg
from mmcv.ops import nms
assert torch.cuda.is_available(), 'no CUDA GPU here'
boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10]], device='cuda')
nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)  # a CUDA op
print(f'[gpu check] {torch.cuda.get_device_name()}: torch {torch.__version__}'
      f', mmcv {mmcv.__version__} (CUDA ops), mmdet {mmdet.__version__}, '
      f'mmseg {mmseg.__version__}')
EOF

part() {
  local title=$1 start=$SECONDS
  shift
  echo "== $title"
  "$@"
  echo "== $title: done in $((SECONDS - start)) s"
}

part "CUDA tests" "$PY" -m pytest -m cuda tests/test_cuda.py -v \
  -p no:cacheprovider
"$PY" tools/generate_shapes.py --out data/shapes --num-train 400 --num-val 50
for family in retinanet faster-rcnn; do
  part "train --amp: $family" "$PY" tools/train.py \
    "configs/shapes/${family}_tiny_shapes_agvm.py" --amp \
    --work-dir "work_dirs/gpu_check/$family" --cfg-options \
    train_cfg.max_iters=200 train_cfg.val_interval=200
done
part "benchmark: Faster R-CNN R50-FPN, fp32" "$PY" \
  tools/benchmark_overhead.py --model faster-rcnn-r50 --nproc 1 --runs 3 \
  --rounds 3
part "benchmark: Faster R-CNN R50-FPN, fp16 AMP" "$PY" \
  tools/benchmark_overhead.py --model faster-rcnn-r50 --nproc 1 --runs 3 \
  --rounds 3 --amp fp16
echo "[gpu check] all parts passed in $SECONDS s"
