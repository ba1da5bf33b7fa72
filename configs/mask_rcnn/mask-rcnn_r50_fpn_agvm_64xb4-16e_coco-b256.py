# Mask R-CNN R50-FPN, COCO instance segmentation; SGD + AGVM.
# Global batch 256 = 64 GPUs x 4 images per GPU.
# lr 0.16 * 2 ** 0.5: authors' config (= 0.16 x sqrt(256 / 128)).
# Warm-up 920 optimizer steps; AGVM from step 1020, gradients clipped only on
# steps [820, 1020) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/mask_rcnn/mask-rcnn_r50_fpn_agvm_64xb4-16e_coco-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup920.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.16 * 2 ** 0.5))
auto_scale_lr = dict(base_batch_size=256)
