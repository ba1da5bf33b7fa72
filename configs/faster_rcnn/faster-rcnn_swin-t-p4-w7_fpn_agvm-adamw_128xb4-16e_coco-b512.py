# Faster R-CNN Swin-T-FPN, COCO detection; AdamW + AGVM.
# Global batch 512 = 128 GPUs x 4 images per GPU.
# lr 1e-4 * (512 / 16) ** 0.5 (AdamW: Swin-T recipe 1e-4 at 16, square-root scaling).
# Warm-up 460 optimizer steps; AGVM from step 560, gradients clipped only on
# steps [360, 560) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_swin-t-p4-w7_fpn_agvm-adamw_128xb4-16e_coco-b512.py 128
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/faster-rcnn_swin-t-p4-w7_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup460.py',
    '../_base_/optimizers/agvm-adamw-swin.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=1e-4 * (512 / 16) ** 0.5))
auto_scale_lr = dict(base_batch_size=512)
