"""An id map relabelled where the model's output lies (``panbench.models.encoding.relabelled``): on a GPU the lookup
runs there and only the int32 map is copied to the host; the map is the host's bit for bit (checked on CPU
tensors, the device path run on them)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from panbench.models import encoding  # noqa: E402
from panbench.models.encoding import relabelled, relabelled_on_device  # noqa: E402


@pytest.mark.parametrize("shape", [(800, 1333), (1, 1), (480, 640)])
def test_a_map_relabelled_on_the_device_is_the_hosts_bit_for_bit(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    n = 60
    new_id = np.zeros(n, np.uint32)
    new_id[1:] = rng.choice(np.arange(1, 2**24, dtype=np.uint32), n - 1, replace=False)
    new_id[-1] = 2**24 - 1  # the largest id a PNG holds
    inv = torch.from_numpy(rng.integers(0, n, shape))
    host = relabelled(inv, new_id)
    device = relabelled_on_device(inv, new_id)
    assert host.dtype == device.dtype == np.uint32 and host.shape == shape
    assert np.array_equal(host, device) and np.array_equal(host, new_id[inv.numpy()])


def test_an_inverse_on_a_device_is_looked_up_there(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(encoding, "relabelled_on_device", lambda inv, new_id: seen.append(inv.device.type) or "dev")
    inv = torch.zeros((2, 2), dtype=torch.int64, device="meta")
    assert relabelled(inv, np.arange(3, dtype=np.uint32)) == "dev" and seen == ["meta"]
    assert relabelled(torch.zeros((2, 2), dtype=torch.int64), np.arange(3, dtype=np.uint32)).tolist() == [[0, 0]] * 2
