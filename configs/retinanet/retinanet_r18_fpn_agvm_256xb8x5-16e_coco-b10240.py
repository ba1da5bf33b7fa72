# RetinaNet R18-FPN, COCO detection; SGD + AGVM.
# Global batch 10240 = 256 GPUs x 8 images x 5 accumulated micro-batches.
# lr 0.08 * (10240 / 128) ** 0.5: rule: 0.01 x 128 / 16 = 0.08 at 128, square-root scaling above.
# Warm-up 23 optimizer steps, shorter than the usual offset 100: AGVM
# from step 46 = 2 x 23, gradients clipped only on steps [0, 46).
# Run: tools/dist_train.sh configs/retinanet/retinanet_r18_fpn_agvm_256xb8x5-16e_coco-b10240.py 256
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/retinanet_r18_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup115.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=8)  # images per GPU
optim_wrapper = dict(
    optimizer=dict(lr=0.08 * (10240 / 128) ** 0.5),
    accumulative_counts=5,
    agvm=dict(interval=5, start_iter=46, clip_grad_window=(0, 46)))
auto_scale_lr = dict(base_batch_size=10240)
