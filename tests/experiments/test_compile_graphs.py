"""Every LRA Pathfinder and ListOps preset model compiles into one graph.

``compile=true``/``auto`` with ``compile_mode=reduce-overhead`` replays the compiled step as
CUDA graphs. A graph break splits the model into pieces with Python between them: each piece
is then recorded and replayed on its own and the step runs near eager speed. The mixers choose
their computation path by device (``chosen_path``), so the CUDA branch is traced here by
handing ``chosen_path`` a CUDA device while the tensors stay on the CPU. Pathfinder batches
carry the presets' mask of black pixels (``task.mask=lra_nonzero``); ListOps batches a key
mask of their lengths. The models are cut to their first
two blocks, which every preset's blocks repeat (:func:`_model` checks it).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments import train as harness
from experiments.config import validate_experiment
from spectrans.layers.attention import key_padding
from spectrans.layers.attention.lst import _LSTFilterAttention
from spectrans.layers.mixing.fourier import FourierMixing
from spectrans.layers.mixing.wavelet import WaveletMixing

ROOT = Path(__file__).resolve().parents[2]
PATHFINDER_PRESETS = sorted(
    p.stem for p in (ROOT / "conf/experiment/lra").glob("*-pathfinder.yaml")
)
LISTOPS_PRESETS = sorted(p.stem for p in (ROOT / "conf/experiment/lra").glob("*-listops.yaml"))
PATH_CHOOSERS = (_LSTFilterAttention, FourierMixing, WaveletMixing)
TRACED_LAYERS = 2


def _model(preset: str, num_classes: int = 2, max_length: int = 1024) -> torch.nn.Module:
    """The preset's model as ``train.py`` builds it, cut to its first two blocks.

    The blocks of every preset repeat their first two (checked here), so the two trace every
    kind of block the model has at half the cost of four.
    """
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        raw = compose("config", overrides=[f"experiment=lra/{preset}"])
    exp = validate_experiment(OmegaConf.to_container(raw, resolve=True))
    task = SimpleNamespace(
        vocab_size=256,
        num_classes=num_classes,
        max_length=max_length,
        is_pair=False,
        input_type="tokens",
    )
    model = harness.build_model(exp, task).train()
    lists = [m for name, m in model.named_modules() if name.split(".")[-1] == "blocks"]
    assert len(lists) == 1, "the model has one ModuleList of blocks"
    blocks = lists[0]
    kinds = [f"{type(b).__name__}:{type(b.mixer).__name__}" for b in blocks]  # block:mixer
    period = kinds[:TRACED_LAYERS]
    assert kinds == [period[i % TRACED_LAYERS] for i in range(len(kinds))], (preset, kinds)
    del blocks[TRACED_LAYERS:]
    return model


def _choose_as_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in PATH_CHOOSERS:
        original = cls.chosen_path

        def on_cuda(self: object, n: int, device: torch.device, _orig: object = original) -> str:
            return _orig(self, n, torch.device("cuda"))  # type: ignore[operator]

        monkeypatch.setattr(cls, "chosen_path", on_cuda)


def _segments_as_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key-padding softmax takes its CUDA path (row sort, segments, sort back).

    The availability check runs as on a GPU (a CUDA device, the GPU's compute capability
    stubbed), so that what it calls is traced too; the flash kernel, which has no CPU
    implementation, is stood in for by an op of the same shapes.
    """
    available = key_padding.varlen_available

    def on_cuda(device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
        return available(torch.device("cuda"), torch.bfloat16, head_dim)

    def stand_in(q, k, v, cu, max_len, dropout, scale, seqused_k=None):  # noqa: ANN001, ANN202
        return q * scale + k + v  # (T, H, d)

    monkeypatch.setattr(key_padding, "_flash_capable", lambda index: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(key_padding, "varlen_available", on_cuda)
    monkeypatch.setattr(key_padding, "segment_attention", stand_in)


def test_the_path_choosers_are_the_mixers_with_a_chosen_path() -> None:
    assert all(callable(getattr(cls, "chosen_path", None)) for cls in PATH_CHOOSERS)


@pytest.mark.parametrize("paths", ["cpu", "cuda"])
@pytest.mark.parametrize("preset", PATHFINDER_PRESETS)
def test_the_pathfinder_model_compiles_into_one_graph(
    preset: str, paths: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if paths == "cuda":
        _choose_as_on_cuda(monkeypatch)
        _segments_as_on_cuda(monkeypatch)
    model = _model(preset)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # raises at a graph break
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 256, (2, 1024), generator=gen)  # (B, N)
    ids[torch.rand(ids.shape, generator=gen) < 0.66] = 0  # black pixels, about 2/3 of them
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = compiled(input_ids=ids, attention_mask=ids > 0)  # (B, 2): LRA's mask
    logits.float().sum().backward()
    assert logits.shape == (2, 2) and bool(torch.isfinite(logits).all())
    torch._dynamo.reset()


@pytest.mark.parametrize("preset", LISTOPS_PRESETS)
def test_the_listops_model_compiles_into_one_graph_with_a_key_mask(
    preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _choose_as_on_cuda(monkeypatch)
    _segments_as_on_cuda(monkeypatch)
    model = _model(preset, num_classes=10, max_length=2000)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    ids = torch.randint(1, 20, (2, 2000))  # (B, N)
    mask = torch.arange(2000)[None, :] < torch.tensor([[2000], [700]])  # (B, N)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = compiled(input_ids=ids, attention_mask=mask)  # (B, 10)
    logits.float().sum().backward()
    assert logits.shape == (2, 10) and bool(torch.isfinite(logits).all())
    torch._dynamo.reset()


def test_a_graph_break_is_caught_by_this_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails on a model whose path choice breaks the graph."""

    def breaks(self: object, n: int, device: torch.device) -> str:
        torch._dynamo.graph_break()
        return "fast"

    monkeypatch.setattr(_LSTFilterAttention, "chosen_path", breaks)
    model = _model("lst-dct-pathfinder")
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with pytest.raises(Exception, match="(?i)graph break|graph_break"):
        compiled(input_ids=torch.randint(1, 256, (2, 1024)))
    torch._dynamo.reset()
