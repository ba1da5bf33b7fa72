# PMD-LAMB baseline (PMDLAMB): ./lamb.py plus decay_factor 0.5 and
# decay_period, which every leaf sets to the optimizer steps of one epoch,
# ceil(N / B) (configs/README.md, baselines; docs/optimizers.md).
_base_ = './lamb.py'
optim_wrapper = dict(
    optimizer=dict(type='PMDLAMB', decay_period=None, decay_factor=0.5))
