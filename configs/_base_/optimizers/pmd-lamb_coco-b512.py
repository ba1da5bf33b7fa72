# PMD-LAMB (./pmd-lamb.py) at global batch 512 on COCO: lr 1e-4 x
# sqrt(512 / 16), decay_period one epoch, ceil(117266 / 512) = 230 steps.
_base_ = './pmd-lamb.py'
optim_wrapper = dict(
    optimizer=dict(lr=1e-4 * (512 / 16) ** 0.5, decay_period=230))
