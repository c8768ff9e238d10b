"""The Triton kernels compile for an H100/H200 (sm_90) without a GPU.

Triton's interpreter runs the kernels' maths on the CPU but does not type-check them as the
compiler does (a non-constexpr global, for one, only fails at compile time). The NVIDIA
backend bundled with Triton compiles to PTX and a cubin without a device. Skipped without
Triton (the CPU build of torch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.triton_env import needs_triton

pytestmark = needs_triton

BF16 = "*bf16"
SMALL_HEAD = {
    "_forward": {
        "q_ptr": BF16, "k_ptr": BF16, "v_ptr": BF16, "o_ptr": BF16, "lse_ptr": "*fp32",
        "seed_ptr": "*i64", "scale": "fp32", "p_drop": "fp32", "n": "i32",
    },
    "_backward_kv": {
        "q_ptr": BF16, "k_ptr": BF16, "v_ptr": BF16, "do_ptr": BF16, "lse_ptr": "*fp32",
        "delta_ptr": "*fp32", "dk_ptr": BF16, "dv_ptr": BF16, "seed_ptr": "*i64",
        "scale": "fp32", "p_drop": "fp32", "n": "i32",
    },
    "_backward_q": {
        "q_ptr": BF16, "k_ptr": BF16, "v_ptr": BF16, "do_ptr": BF16, "lse_ptr": "*fp32",
        "delta_ptr": "*fp32", "dq_ptr": BF16, "seed_ptr": "*i64", "scale": "fp32",
        "p_drop": "fp32", "n": "i32",
    },
}  # fmt: skip
FAVOR = {
    "_favor_keys": {
        "k_ptr": BF16, "v_ptr": BF16, "w_ptr": BF16, "mask_ptr": "*u8", "kv_ptr": "*fp32",
        "emax_ptr": "*fp32", "n": "i32", "m": "i32", "heads": "i32",
    },
    "_favor_queries": {
        "q_ptr": BF16, "w_ptr": BF16, "kv_ptr": "*fp32", "out_ptr": BF16, "n": "i32", "m": "i32",
    },
    "_favor_backward_q": {
        "q_ptr": BF16, "w_ptr": BF16, "kv_ptr": "*fp32", "g_ptr": BF16, "dq_ptr": BF16,
        "dkv_ptr": "*fp32", "n": "i32", "m": "i32",
    },
    "_favor_backward_k": {
        "k_ptr": BF16, "v_ptr": BF16, "w_ptr": BF16, "emax_ptr": "*fp32", "dkv_ptr": "*fp32",
        "dk_ptr": BF16, "dv_ptr": BF16, "n": "i32", "m": "i32",
    },
}  # fmt: skip


def _compile(fn: object, signature: dict[str, str], constants: dict[str, object]) -> object:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    source = ASTSource(
        fn=fn,
        signature={**signature, **dict.fromkeys(constants, "constexpr")},
        constexprs=constants,
    )
    return triton.compile(source, target=GPUTarget("cuda", 90, 32))


def compile_all() -> list[str]:
    """Compile every kernel; one line per failure (run with ``TRITON_INTERPRET`` unset)."""
    from spectrans.kernels import favor_fused, small_head_attention
    from spectrans.kernels import favor_triton as favor_kernels
    from spectrans.kernels import small_head_attention_triton as small_kernels

    jobs = []
    for name, signature in SMALL_HEAD.items():
        for dropout in (True, False):
            constants = {
                "D": small_head_attention.PADDED_HEAD_DIM,
                "BM": small_head_attention.BLOCK_M,
                "BN": small_head_attention.BLOCK_N,
                "DROPOUT": dropout,
                "PREC": "tf32",
            }
            jobs.append(
                (f"{name} dropout={dropout}", getattr(small_kernels, name), signature, constants)
            )
    for name, signature in FAVOR.items():
        rows = "BN" if name in ("_favor_keys", "_favor_backward_k") else "BM"
        constants = {
            "D": favor_fused.PADDED_WIDTH,
            "E1": favor_fused.PADDED_WIDTH,
            "M": 256,
            rows: favor_fused.BLOCK_ROWS,
            "PREC": "tf32",
        }
        if name == "_favor_keys":
            constants["HAS_MASK"] = True
        jobs.append((name, getattr(favor_kernels, name), signature, constants))
    failures = []
    for label, fn, signature, constants in jobs:
        try:
            _compile(fn, signature, constants)
        except Exception as err:  # noqa: BLE001 - every compile error is reported
            failures.append(f"{label}: {str(err).strip().splitlines()[-1][:300]}")
    return failures


def test_every_kernel_compiles_for_sm90() -> None:
    # In a fresh interpreter without TRITON_INTERPRET (tests.triton_env sets it on a CPU): under
    # it the kernels are defined as interpreted functions, which the compiler does not take.
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import test_kernels_compile as t\n"
        "os.environ.pop('TRITON_INTERPRET', None)\n"
        "bad = t.compile_all(); print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", code, here], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
