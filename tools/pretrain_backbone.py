"""Pretrain the shapes configs' backbone offline, as ImageNet pretraining
stands in for the paper's detectors.

    python tools/pretrain_backbone.py [--out data/pretrained/resnet18_16ch_shapes.pth]
        [--data data/shapes_pretrain] [--epochs 30] [--threads 2] [--force]

Trains exactly the ResNet of the shapes configs (mmdet's ResNet-18 with 16
base channels) as a classifier of 48 px crops: the six shapes (a crop around
each object) and background (a window that touches no object), from a
shapes set generated with another seed (1) into its own directory, so no
image of the detection train or val splits (seed 0) is seen. Training runs
through mmengine's Runner (a small model class, SGD, cosine lr) with a
fixed seed, one data loader process and a fixed thread count, so the same
command gives the same checkpoint on the same machine. It prints the
held-out accuracy and writes the backbone's state dict with plain mmdet
ResNet keys (``conv1.weight``, ``layer1.0.conv1.weight``, ...), which a
shapes config loads with::

    model = dict(backbone=dict(frozen_stages=1, init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='data/pretrained/resnet18_16ch_shapes.pth')))

The checkpoint is cached: if it exists and its ``.json`` records the same
settings, nothing is done (``--force`` retrains).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

import checkout  # noqa: F401  this checkout first on sys.path
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset

# what the paper-regime configs load (pretrained_backbone in
# configs/_base_/schedules/shapes_paper_6500it.py)
CHECKPOINT = 'data/pretrained/resnet18_16ch_shapes.pth'

# mmdet's data_preprocessor of the shapes configs (RGB order)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
BACKBONE = dict(type='mmdet.ResNet', depth=18, base_channels=16,
                num_stages=4, out_indices=(3, ), frozen_stages=-1,
                norm_cfg=dict(type='BN', requires_grad=True),
                norm_eval=False, style='pytorch', init_cfg=None)
NUM_SHAPES = 6  # SHAPES_THING_CLASSES; class 6 is background
DEFAULTS = dict(data='data/shapes_pretrain', num_train=1500, num_val=300,
                seed=1, crop=48, epochs=30, batch_size=64, lr=0.1,
                weight_decay=5e-4, threads=2)


def make_crops(data_root: str, split: str, size: int, seed: int
               ) -> Dict[str, np.ndarray]:
    """Crops of one split: a square around every object (1.25x its box)
    labelled with its shape, and one background window per image that
    overlaps no object box, all resized to ``size`` px."""
    from PIL import Image
    with open(osp.join(data_root, 'annotations',
                       f'instances_{split}2017.json')) as f:
        coco = json.load(f)
    boxes: Dict[int, List] = {}
    for ann in coco['annotations']:
        boxes.setdefault(ann['image_id'], []).append(ann)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for info in coco['images']:
        img = Image.open(osp.join(data_root, f'{split}2017',
                                  info['file_name'])).convert('RGB')
        anns = boxes.get(info['id'], [])
        for ann in anns:
            x, y, w, h = ann['bbox']
            side = max(w, h) * 1.25
            cx, cy = x + w / 2, y + h / 2
            window = (cx - side / 2, cy - side / 2, cx + side / 2,
                      cy + side / 2)
            images.append(_crop(img, window, size))
            labels.append(ann['category_id'] - 1)
        for _ in range(20):  # a background window, if one is free
            side = float(rng.uniform(16, 48))
            x0, y0 = rng.uniform(0, img.width - side, 2)
            if all(x0 + side <= a['bbox'][0] or a['bbox'][0] + a['bbox'][2]
                   <= x0 or y0 + side <= a['bbox'][1] or a['bbox'][1] +
                   a['bbox'][3] <= y0 for a in anns):
                images.append(_crop(img, (x0, y0, x0 + side, y0 + side),
                                    size))
                labels.append(NUM_SHAPES)
                break
    return dict(images=np.stack([np.asarray(i) for i in images]),
                labels=np.asarray(labels, np.int64))


def _crop(img, window: Sequence[float], size: int):
    """``window`` of ``img`` (black outside the image) at ``size`` px."""
    from PIL import Image
    box = tuple(int(round(v)) for v in window)
    return img.crop(box).resize((size, size), Image.BILINEAR)


class CropDataset(Dataset):
    """Normalised CHW crops; training adds random flips and 90-degree
    rotations (the shapes are drawn at any angle)."""

    def __init__(self, crops: Dict[str, np.ndarray], train: bool) -> None:
        images = torch.from_numpy(crops['images']).permute(0, 3, 1, 2)
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        self.images = (images.float() - mean) / std
        self.labels = torch.from_numpy(crops['labels'])
        self.train = train
        self.metainfo = dict(classes=NUM_SHAPES + 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        if self.train:  # torch's RNG: seeded by the Runner's randomness
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
            image = torch.rot90(image, int(torch.randint(4, ())), (1, 2))
        return dict(inputs=image, labels=self.labels[index])


class CropClassifier(BaseModel):
    """The shapes configs' backbone, global average pooling and a linear
    layer."""

    def __init__(self) -> None:
        super().__init__()
        from mmdet.registry import MODELS
        self.backbone = MODELS.build(BACKBONE)
        self.head = nn.Linear(16 * 8, NUM_SHAPES + 1)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor,
                mode: str = 'tensor'):
        logits = self.head(self.backbone(inputs)[-1].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            return [(logits.argmax(1), labels)]
        return logits


class CropAccuracy(BaseMetric):
    """Top-1 accuracy in percent."""
    default_prefix = 'crops'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for pred, labels in data_samples:
            self.results.append(((pred == labels).sum().item(), len(labels)))

    def compute_metrics(self, results: list) -> dict:
        right = sum(r for r, _ in results)
        return dict(accuracy=100.0 * right / sum(n for _, n in results))


def _loader(dataset: Dataset, batch_size: int, train: bool) -> dict:
    return dict(dataset=dataset, batch_size=batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=train),
                collate_fn=dict(type='default_collate'))


def pretrain(out: str, settings: dict, work_dir: str) -> float:
    """Train the classifier; write the backbone to ``out``. Returns the
    held-out accuracy."""
    from mmengine.runner import Runner

    from agvm_mm.datasets import generate_shapes
    s = settings
    generate_shapes(s['data'], s['num_train'], s['num_val'], seed=s['seed'],
                    tasks=('instance', ))
    train = CropDataset(make_crops(s['data'], 'train', s['crop'], 0), True)
    val = CropDataset(make_crops(s['data'], 'val', s['crop'], 1), False)
    print(f'[pretrain] {len(train)} training and {len(val)} held-out crops '
          f'of {s["crop"]} px from {s["data"]} (seed {s["seed"]})',
          flush=True)
    epochs = s['epochs']
    runner = Runner(
        model=CropClassifier(), work_dir=work_dir,
        train_dataloader=_loader(train, s['batch_size'], True),
        val_dataloader=_loader(val, 256, False),
        val_evaluator=[CropAccuracy()],
        train_cfg=dict(by_epoch=True, max_epochs=epochs,
                       val_interval=epochs),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(
            type='SGD', lr=s['lr'], momentum=0.9,
            weight_decay=s['weight_decay'])),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
                 end=1, convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', by_epoch=True, begin=1,
                 end=epochs, T_max=epochs - 1, convert_to_iter_based=True)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=epochs),
                           logger=dict(type='LoggerHook', interval=50)),
        randomness=dict(seed=0), default_scope='mmdet',
        log_processor=dict(by_epoch=True), cfg=dict())
    runner.train()
    accuracy = runner.message_hub.get_scalar('val/crops/accuracy').current()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    state = {k: v.cpu() for k, v in runner.model.backbone.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(accuracy=accuracy,
                                                settings=s)), out)
    return float(accuracy)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('--out', default=CHECKPOINT)
    parser.add_argument('--work-dir', default='work_dirs/pretrain_backbone')
    parser.add_argument('--force', action='store_true')
    for key, value in DEFAULTS.items():
        parser.add_argument('--' + key.replace('_', '-'), type=type(value),
                            default=value)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in DEFAULTS}
    record = osp.splitext(args.out)[0] + '.json'
    if not args.force and osp.exists(args.out) and osp.exists(record):
        with open(record) as f:
            done = json.load(f)
        if done['settings'] == settings:
            print(f'[pretrain] {args.out} exists (held-out accuracy '
                  f'{done["accuracy"]:.1f} %); --force retrains')
            return 0
    torch.set_num_threads(args.threads)  # fixed: reductions depend on it
    start = time.time()
    accuracy = pretrain(args.out, settings, args.work_dir)
    minutes = (time.time() - start) / 60
    with open(record, 'w') as f:
        json.dump(dict(settings=settings, accuracy=accuracy,
                       minutes=round(minutes, 1)), f, indent=1)
    print(f'[pretrain] held-out accuracy {accuracy:.1f} % '
          f'({minutes:.1f} min); backbone: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
