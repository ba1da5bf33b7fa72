# PMD-LAMB (./pmd-lamb.py) at global batch 256 on COCO: lr 1e-4 x
# sqrt(256 / 16), decay_period one epoch, ceil(117266 / 256) = 459 steps.
_base_ = './pmd-lamb.py'
optim_wrapper = dict(
    optimizer=dict(lr=1e-4 * (256 / 16) ** 0.5, decay_period=459))
