#!/usr/bin/env bash
# Install the pinned OpenMMLab 2.0 stack and agvm_mm into ./.venv
# (docs/install.md says why each step is as it is). Idempotent: a complete
# venv is detected and nothing is reinstalled.
#
#   bash tools/install.sh              # CPU: torch 2.13.0 (CPU build)
#   AGVM_CUDA=1 bash tools/install.sh  # GPU: keeps the CUDA torch you
#                                      # installed, builds mmcv's CUDA ops
#
# With AGVM_CUDA=1 the venv is created with --system-site-packages, so the
# torch of $PYTHON (default python3) is used as it is; mmcv 2.1.0 is built
# against it with MMCV_WITH_OPS=1 FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST from
# the GPU (or as you set it), and mmcv.ops is checked on CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AGVM_VENV:-.venv}
PY=${PYTHON:-python3}
CUDA=${AGVM_CUDA:-0}
stamp="$VENV/.agvm_installed"
if [ -f "$stamp" ] && "$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, agvm_mm" 2>/dev/null; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$CUDA" = 1 ]; then
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
py="$VENV/bin/python"
pip="$py -m pip"
$pip install -q --upgrade "pip>=24" wheel
# torch alone first: with torch and mmcv in one command mmcv builds WITHOUT
# ops. setuptools < 82: mmcv's setup.py imports pkg_resources.
if [ "$CUDA" = 1 ]; then
  "$py" -c "import torch; assert torch.version.cuda and torch.cuda.is_available()" 2>/dev/null || {
    echo "[install] AGVM_CUDA=1 needs a CUDA build of torch and a GPU in $PY's environment: install your torch first (docs/install.md)" >&2
    exit 1
  }
  $pip install -q "setuptools>=77.0.3,<82" ninja
  arch=${TORCH_CUDA_ARCH_LIST:-$("$py" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
  build=(env MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS=${MAX_JOBS:-$(nproc)} CPPFLAGS=-g0)
  what="CUDA ops for sm $arch"
else
  $pip install -q torch==2.13.0 "setuptools>=77.0.3,<82" ninja
  build=(env -u FORCE_CUDA MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} CPPFLAGS=-g0)
  what="CPU ops"
fi
# mmcv (the long part: a compile) and the rest of the stack at the same
# time; mmcv with --no-deps, its dependencies come with the rest, so the two
# pips never install the same package
mmcv_pid=
if ! "$py" -c "import mmcv.ops" 2>/dev/null; then
  echo "[install] building mmcv 2.1.0 with $what (about 6 min on 2 cores; cached afterwards)"
  # pip's wheel cache keys on neither torch nor the build variables: a
  # cached CPU build would be taken for the CUDA one
  [ "$CUDA" != 1 ] || $pip cache remove mmcv >/dev/null 2>&1 || true
  "${build[@]}" $pip install -q --no-build-isolation --no-deps mmcv==2.1.0 &
  mmcv_pid=$!
fi
$pip install -q mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 ftfy regex \
  pycocotools matplotlib tensorboard pytest pytest-timeout pytest-xdist \
  addict numpy packaging Pillow pyyaml yapf opencv-python
# timm without its dependencies: they include torchvision, whose PyPI build
# replaces a CPU torch by a CUDA one. agvm_mm loads only timm's optimizer
# files, which need nothing but torch.
$pip install -q --no-deps timm==1.0.31
[ -z "$mmcv_pid" ] || wait "$mmcv_pid"
$pip install -q --no-build-isolation --no-deps -e .
# The only check that catches mmcv's silent no-ops build; and torch must
# still be the one mmcv was compiled against.
"$py" - "$CUDA" <<'EOF'
import sys
import torch, mmcv, mmcv.ops, mmdet, mmseg, agvm_mm
if sys.argv[1] == '1':
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10]], device='cuda')
    mmcv.ops.nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
else:
    assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__
print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__,
      '(CUDA ops checked)' if sys.argv[1] == '1' else '')
EOF
touch "$stamp"
