# Faster R-CNN Swin-T-FPN, COCO detection; baseline: AdamW.
# Same batch (128 GPUs x 4 = 512), data, warm-up and schedule as
# faster-rcnn_swin-t-p4-w7_fpn_agvm-adamw_128xb4-16e_coco-b512.py;
# only the optimizer differs. Rules for its values: configs/README.md.
# Run: tools/dist_train.sh configs/faster_rcnn/faster-rcnn_swin-t-p4-w7_fpn_adamw_128xb4-16e_coco-b512.py 128
_base_ = './faster-rcnn_swin-t-p4-w7_fpn_agvm-adamw_128xb4-16e_coco-b512.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4 * (512 / 16) ** 0.5, betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }),
    accumulative_counts=1,
    clip_grad=None)
custom_hooks = []
