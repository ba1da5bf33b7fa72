# RetinaNet R50-FPN, COCO detection; baseline: PMD-LAMB (PMDLAMB).
# Global batch 256 = 64 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# retinanet_r50_fpn_agvm_64xb4-16e_coco-b256.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/retinanet/retinanet_r50_fpn_pmd-lamb_64xb4-16e_coco-b256.py 64
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/retinanet_r50_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup920.py',
    '../_base_/optimizers/pmd-lamb_coco-b256.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
auto_scale_lr = dict(base_batch_size=256)
