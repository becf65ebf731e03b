"""SR tests run torch on one thread: on a loaded 2-core machine two threads that wait for each
other run 5-8x slower than one, and the tests check results, not thread scaling."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
