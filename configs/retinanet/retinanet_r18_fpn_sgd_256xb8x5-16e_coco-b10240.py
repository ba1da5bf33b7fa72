# RetinaNet R18-FPN, COCO detection; baseline: plain SGD (no AGVM).
# Global batch 10240 = 256 GPUs x 8 images x 5 accumulated micro-batches.
# Batch, data, warm-up and schedule as in
# retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r18_fpn_sgd_256xb8x5-16e_coco-b10240.py 256
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/retinanet_r18_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup115.py',
    '../_base_/optimizers/sgd.py'
]
train_dataloader = dict(batch_size=8)  # images per GPU
optim_wrapper = dict(
    optimizer=dict(lr=0.08 * (10240 / 128) ** 0.5),
    accumulative_counts=5)
auto_scale_lr = dict(base_batch_size=10240)
