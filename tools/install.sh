#!/usr/bin/env bash
# Install the pinned OpenMMLab 2.0 stack into ./.venv (CPU). Idempotent: a complete
# venv is detected and nothing is reinstalled. GPU users: see README "Install on GPUs".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AGVM_VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.agvm_installed"
if [ -f "$stamp" ] && "$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, agvm_mm" 2>/dev/null; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip"
$pip install -q --upgrade "pip>=24" wheel
# torch alone first: with torch and mmcv in one command mmcv builds WITHOUT ops.
$pip install -q torch==2.13.0 "setuptools>=77.0.3,<82" ninja
if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
  echo "[install] building mmcv 2.1.0 with ops (about 12 min on 2 cores; cached afterwards)"
  env -u FORCE_CUDA MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} CPPFLAGS=-g0 \
    $pip install -q --no-build-isolation mmcv==2.1.0
fi
$pip install -q mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 ftfy regex \
  pycocotools matplotlib tensorboard pytest pytest-timeout
# timm without its dependencies: they include torchvision, whose PyPI build
# replaces this CPU torch by a CUDA one. agvm_mm loads only timm's optimizer
# files, which need nothing but torch.
$pip install -q --no-deps timm==1.0.31
$pip install -q --no-build-isolation --no-deps -e .
# The only check that catches mmcv's silent no-ops build; and torch must
# still be the one mmcv was compiled against.
"$VENV/bin/python" -c "
import torch, mmcv.ops, mmdet, mmseg, agvm_mm
assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__
print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__)"
touch "$stamp"
