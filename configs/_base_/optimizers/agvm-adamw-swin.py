# AdamW + AGVM (Swin-T): the AGVM settings and window of ./agvm-sgd.py on
# AdamW, betas (0.9, 0.999), weight decay 0.05, none on norms and position
# tables (mmdet's Swin recipes); AGVM picks its Adam rule from AdamW.
_base_ = './agvm-sgd.py'
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=None,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
