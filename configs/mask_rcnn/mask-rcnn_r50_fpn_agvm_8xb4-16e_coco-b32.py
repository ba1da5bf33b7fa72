# Mask R-CNN R50-FPN, COCO instance segmentation; SGD + AGVM.
# Global batch 32 = 8 GPUs x 4 images per GPU.
# lr 0.04: linear rule 0.02 x 32 / 16 (mmdet 1x recipe).
# Warm-up 500 optimizer steps; AGVM from step 600, gradients clipped only on
# steps [400, 600) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/mask_rcnn/mask-rcnn_r50_fpn_agvm_8xb4-16e_coco-b32.py 8
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup500.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.04))
auto_scale_lr = dict(base_batch_size=32)
