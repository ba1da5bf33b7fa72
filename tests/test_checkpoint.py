"""mmengine checkpoints load under torch's weights_only=True once agvm_mm is
imported, without opening the loader to arbitrary globals."""
import pickle

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer

import agvm_mm  # noqa: F401


class _Getattr:
    """Pickles as ``getattr(owner, name)``."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


def test_message_hub_state_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('agvm_ckpt_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/agvm_scale/neck', 1.02)
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(iter=3)), path)
    state = torch.load(path, weights_only=True)
    buffer = state['message_hub']['log_scalars']['train/agvm_scale/neck']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 1.02


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '_set_default_statistics'),
                                        (ConfigDict, 'update')])
def test_other_getattr_is_refused(tmp_path, owner, name):
    path = tmp_path / 'evil.pth'
    torch.save({'x': _Getattr(owner, name)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
