# AdamW baseline (Swin-T): weight decay 0.05, none on norms and position
# tables, as mmdet's Swin recipes.
_base_ = './adamw.py'
optim_wrapper = dict(
    optimizer=dict(weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
