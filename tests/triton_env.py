"""Where the Triton kernel tests run: on the GPU, else in Triton's interpreter on the CPU.

Importing this module sets ``TRITON_INTERPRET=1`` when there is no GPU. The kernel modules
define their kernels on first use, after it. Without Triton (the CPU build of torch) the
tests carrying :data:`needs_triton` are skipped.
"""

from __future__ import annotations

import os

import pytest
import torch

from spectrans.kernels.triton_support import HAS_TRITON

if HAS_TRITON and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
HALF = [torch.float16] + ([torch.bfloat16] if DEVICE == "cuda" else [])
"""Half-precision dtypes to test: the interpreter has no bfloat16 arithmetic (numpy)."""
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
