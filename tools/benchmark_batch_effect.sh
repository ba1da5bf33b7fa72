#!/usr/bin/env bash
# The shapes miniature of the paper's tables: does AGVM keep the small-batch
# accuracy where the large-batch baselines lose it?
#
#   tools/benchmark_batch_effect.sh        # the README's CPU table (2 cores)
#   FAMILIES=retinanet BATCHES="32:sgd 1024 4096" NUM_TRAIN=40000 JOBS=4 \
#       tools/benchmark_batch_effect.sh    # a GPU: larger batches and data
#
# Batch 32 with SGD (and AGVM) is the reference row, 64 and 256 run SGD and
# AGVM, 128 every optimizer, all for the same number of epochs on one
# process (batch = micro-batch x accumulation), the lr scaled by the square
# root of the batch from the shapes recipe, with the recipe's warm-up and lr
# steps at the same fraction of the run. LARS and LAMB / PMD-LAMB use 10x the
# default rule's lr (the README has their sweep). Table and plot:
# work_dirs/batch_effect/results.{md,png}; finished cells are skipped when
# the command is run again. Like tools/reproduce.py, it works in the current
# directory (data/shapes and work_dirs there): run it from the project root.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
FAMILIES=${FAMILIES:-"retinanet faster_rcnn"}
BATCHES=${BATCHES:-"32:sgd,agvm 64:sgd,agvm 128 256:sgd,agvm"}
OPTIMS=${OPTIMS:-"sgd agvm lars lamb pmd-lamb"}
EPOCHS=${EPOCHS:-24}
NUM_TRAIN=${NUM_TRAIN:-2000}
BASE_LR=${BASE_LR:-"lars=x10 lamb=x10 pmd-lamb=x10"}
JOBS=${JOBS:-2}
WORK_ROOT=${WORK_ROOT:-work_dirs/batch_effect}
# shellcheck disable=SC2086  # word splitting of the lists is intended
"$PYTHON" "$ROOT/tools/reproduce.py" --local --families $FAMILIES \
    --batches $BATCHES --optims $OPTIMS --epochs "$EPOCHS" \
    --lr-scaling sqrt --base-lr $BASE_LR --num-train "$NUM_TRAIN" \
    --jobs "$JOBS" --work-root "$WORK_ROOT" "$@"
