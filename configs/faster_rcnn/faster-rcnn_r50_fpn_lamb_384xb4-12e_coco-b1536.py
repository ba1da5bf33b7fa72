# Faster R-CNN R50-FPN, COCO detection; baseline: LAMB (TimmLAMB).
# Global batch 1536 = 384 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# faster-rcnn_r50_fpn_agvm_384xb4-12e_coco-b1536.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_lamb_384xb4-12e_coco-b1536.py 384
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn_coco.py',
    '../_base_/schedules/coco_12e_warmup153.py',
    '../_base_/optimizers/lamb.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=1e-4 * (1536 / 16) ** 0.5))
auto_scale_lr = dict(base_batch_size=1536)
