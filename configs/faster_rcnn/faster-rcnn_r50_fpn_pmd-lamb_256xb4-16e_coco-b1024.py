# Faster R-CNN R50-FPN, COCO detection; baseline: PMD-LAMB (PMDLAMB).
# Global batch 1024 = 256 GPUs x 4 images per GPU.
# Batch, data, warm-up and schedule as in
# faster-rcnn_r50_fpn_agvm_256xb4-16e_coco-b1024.py; only the optimizer differs.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_r50_fpn_pmd-lamb_256xb4-16e_coco-b1024.py 256
# Rules for values the paper does not give: configs/README.md.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn_coco.py',
    '../_base_/schedules/coco_16e_warmup230.py',
    '../_base_/optimizers/pmd-lamb_coco-b1024.py'
]
train_dataloader = dict(batch_size=4)  # images per GPU
auto_scale_lr = dict(base_batch_size=1024)
