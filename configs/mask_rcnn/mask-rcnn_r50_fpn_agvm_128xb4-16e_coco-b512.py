# Mask R-CNN R50-FPN, COCO instance segmentation; SGD + AGVM.
# Global batch 512 = 128 GPUs x 4 images per GPU.
# lr 0.32: authors' config (= 0.16 x sqrt(512 / 128)).
# Warm-up 460 optimizer steps; AGVM from step 560, gradients clipped only on
# steps [360, 560) (AGVMHook: the warm-up's end + 100 and +- 100).
# Run: tools/dist_train.sh configs/mask_rcnn/mask-rcnn_r50_fpn_agvm_128xb4-16e_coco-b512.py 128
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup460.py',
    '../_base_/optimizers/agvm-sgd.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
optim_wrapper = dict(optimizer=dict(lr=0.32))
auto_scale_lr = dict(base_batch_size=512)
