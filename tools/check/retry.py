"""What a failed check run means: an op without a CPU kernel (the model is
CUDA only, not wrong), or inputs too small for the model (retried once with
ones that fit); anything else is a problem of the config."""
import math
import re
from typing import Optional, Tuple

from mmengine.config import Config

# how mmcv (and torch) say an op has no CPU kernel
CUDA_ONLY = (re.compile(r'(\w+?)(?:_forward|_backward)?_impl: implementation '
                        r'for device cpu not found'),
             re.compile(r'(\w+) is not compiled with GPU support'))


def cuda_only_op(message: str) -> Optional[str]:
    """The op an error says has no CPU kernel, or None."""
    return next((m.group(1) for m in (p.search(message) for p in CUDA_ONLY)
                 if m), None)


def message_of(error: Exception, limit: Optional[int] = None) -> str:
    """The error's text; its first line, cut at ``limit`` characters, when
    a limit is given."""
    message = str(error).strip('"')
    if limit is None:
        return message
    line = message.strip().split('\n')[0]
    return line if len(line) <= limit else line[:limit] + '...'


def inputs_it_needs(cfg: Config, error: Optional[Exception], img_size: int,
                    batch_size: int) -> Optional[Tuple[int, int, str]]:
    """Image size and batch for one retry when the check's inputs were too
    small for the model (not a problem of the config), and why; None when
    the error is something else.

    - A head that pools to 1x1 (PSP, UPerNet, ASPP) followed by BN needs
      two images per micro-batch.
    - DINO-type two-stage DETRs take the top-k (k = num_queries) of the
      encoder's tokens; the finest level they read has stride 8, so a
      side of 8 * sqrt(num_queries) gives enough of them.
    """
    message = '' if error is None else message_of(error)
    if 'more than 1 value per channel' in message and batch_size < 2:
        return img_size, 2, ('a BN layer after a head that pools to 1x1 '
                             'needs two images per micro-batch')
    queries = (cfg.get('model') or {}).get('num_queries')
    if 'selected index k out of range' in message and queries:
        size = 32 * math.ceil(8 * math.sqrt(queries) / 32)
        if size > img_size:
            return size, batch_size, (
                f'{queries} queries take the top-k of the encoder tokens, '
                f'and {img_size} px images give fewer than {queries}')
    return None
