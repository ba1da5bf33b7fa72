#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NPROC [train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet. Without a GPU
# the processes use gloo on the CPU.
# Faults: MAX_RESTARTS=N lets torchrun restart the whole group up to N times
# after a worker dies (default 0: the run fails); with --resume each restart
# continues from the latest complete checkpoint (docs/faults.md).
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
MAX_RESTARTS=${MAX_RESTARTS:-0}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python)}
PYTHONPATH="$ROOT":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC --master_port=$PORT \
    --max_restarts=$MAX_RESTARTS \
    "$ROOT/tools/train.py" $CONFIG --launcher pytorch ${@:3}
