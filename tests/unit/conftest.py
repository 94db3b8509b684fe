"""Unit-test set-up: kernels run under the Triton interpreter on the CPU.

TRITON_INTERPRET must be set before any Triton kernel is defined, so it is set here,
before the test modules import phaselib. On a GPU machine, run with TRITON_INTERPRET=0
to test the compiled kernels instead.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread: small models on a 2-core machine only spin on a second."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
