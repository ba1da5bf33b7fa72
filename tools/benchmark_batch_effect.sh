#!/usr/bin/env bash
# The shapes miniature of the paper's tables (issue: does AGVM keep the
# small-batch accuracy where the large-batch baselines lose it?).
#   tools/benchmark_batch_effect.sh            # GPU or a patient CPU
#   FAMILIES=retinanet BATCHES="32 256" EPOCHS=4 tools/benchmark_batch_effect.sh
# Batch 32 with SGD is the reference; the large batches run every optimizer
# for the same number of epochs (accumulation on one process), sqrt lr
# scaling with warm-up. Table and plot: work_dirs/batch_effect/results.{md,png}
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
FAMILIES=${FAMILIES:-"retinanet faster_rcnn"}
BATCHES=${BATCHES:-"32 256 1024"}
OPTIMS=${OPTIMS:-"sgd lars lamb pmd-lamb agvm"}
EPOCHS=${EPOCHS:-12}
cd "$ROOT"
"$PYTHON" tools/reproduce.py --local --families $FAMILIES --batches $BATCHES \
    --optims $OPTIMS --epochs "$EPOCHS" --lr-scaling sqrt \
    --work-root work_dirs/batch_effect "$@"
