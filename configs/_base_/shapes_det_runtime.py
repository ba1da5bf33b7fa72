# mmdet's default runtime with the shapes configs' logging (every 20
# iterations, iteration-based), checkpoints (every 400 iterations, the last
# two kept) and local visualizer backend.
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400,
                    max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(by_epoch=False, window_size=20)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
