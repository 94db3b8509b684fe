"""Unit-test set-up: the kernels run compiled on a GPU, under the Triton interpreter elsewhere.

TRITON_INTERPRET must be set before any Triton kernel is defined, so it is set here,
before the test modules import phaselib: "0" (compiled kernels) when CUDA is present,
"1" (the interpreter, on the CPU) otherwise, unless the environment already says. The
`device` fixture gives the matching device, so the same kernel tests run on both.
"""

import os

import pytest
import torch

if "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "0" if torch.cuda.is_available() else "1"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread: small models on a 2-core machine only spin on a second."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """cuda with the compiled kernels when present, else the CPU under TRITON_INTERPRET=1."""
    interpreting = os.environ.get("TRITON_INTERPRET") == "1"
    if torch.cuda.is_available() and not interpreting:
        return torch.device("cuda")
    if not interpreting:
        pytest.skip("no CUDA and TRITON_INTERPRET is not 1: the kernels cannot run here")
    return torch.device("cpu")
