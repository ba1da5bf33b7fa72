"""What an AGVM wrapper publishes to mmengine's message hub.

As mmengine's ``OptimWrapper`` puts ``grad_norm`` into its message hub when
it clips, an AGVM wrapper puts a :class:`StatisticsStep` into the hub's
runtime information (under :data:`HUB_KEY`, left out of checkpoints) when it
takes a statistics step, and withdraws it at its next backward. So a hook's
``after_train_iter`` finds each statistics step once, in the iteration that
took it (:func:`published_statistics`), without keeping count of the
wrapper's steps.
"""
from dataclasses import dataclass
from typing import Any, Dict, Tuple

from mmengine.logging import MessageHub

#: The message hub's runtime information that holds the statistics steps
#: the AGVM wrappers took in the current iteration.
HUB_KEY = 'agvm_statistics'


@dataclass(frozen=True)
class StatisticsStep:
    """One statistics step of an AGVM wrapper.

    Args:
        wrapper (AGVMOptimWrapperMixin): The wrapper that took it; its
            ``agvm_noise_scale`` gives the critical batches after it.
        step (int): The 0-based optimizer step it was taken on.
        variances (dict[str, float]): ``Phi_m`` per module (one without a
            usable gradient on this step keeps its last one).
        scales (dict[str, float]): The factors ``s_m`` after it.
        gradient_noise (dict[str, tuple[float, float]]): This step's
            ``(|G|^2, tr(Sigma) / B)`` per module with a usable gradient.
    """
    wrapper: Any
    step: int
    variances: Dict[str, float]
    scales: Dict[str, float]
    gradient_noise: Dict[str, Tuple[float, float]]


def published_statistics(hub: MessageHub) -> Tuple[StatisticsStep, ...]:
    """The statistics steps the AGVM wrappers publishing to ``hub`` took in
    the current iteration (none on most iterations)."""
    return tuple(hub.get_info(HUB_KEY) or ())


def publish(hub: MessageHub, stats: StatisticsStep) -> None:
    """Put ``stats`` into ``hub`` in place of its wrapper's last one."""
    hub.update_info(HUB_KEY, _others(hub, stats.wrapper) + (stats, ),
                    resumed=False)


def withdraw(hub: MessageHub, wrapper: Any) -> None:
    """Take ``wrapper``'s statistics step, if any, out of ``hub``."""
    if any(s.wrapper is wrapper for s in published_statistics(hub)):
        hub.update_info(HUB_KEY, _others(hub, wrapper), resumed=False)


def _others(hub: MessageHub, wrapper: Any) -> Tuple[StatisticsStep, ...]:
    return tuple(s for s in published_statistics(hub)
                 if s.wrapper is not wrapper)
