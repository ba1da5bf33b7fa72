# PMD-LAMB (./pmd-lamb.py) at global batch 1024 on COCO: lr 1e-4 x
# sqrt(1024 / 16), decay_period one epoch, ceil(117266 / 1024) = 115 steps.
_base_ = './pmd-lamb.py'
optim_wrapper = dict(
    optimizer=dict(lr=1e-4 * (1024 / 16) ** 0.5, decay_period=115))
