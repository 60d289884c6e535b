"""Model tests run tiny networks: one CPU thread each.

Tiny operations finish faster than OpenMP threads can meet, and on a busy 2-core machine the
threads' spin-waits made a tiny forward pass 100 times slower than on one thread.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
