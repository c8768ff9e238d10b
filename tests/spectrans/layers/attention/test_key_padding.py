"""Key-padding attention through row segments: the permutation, the offsets and the layer path.

On CPU the variable-length flash kernel is replaced by a dense float64 segment attention, so the
sorting, the segment offsets and the layer's wiring are checked against the layer's masked SDPA
path; on CUDA the real kernel is checked against the same path.
"""

import pytest
import torch

from spectrans.layers.attention import key_padding
from spectrans.layers.attention.softmax import SoftmaxAttention

LENGTHS = [1, 2, 7, 16, 33]


def _masks(batch: int, seq_len: int, prefix: bool, generator: torch.Generator) -> torch.Tensor:
    """Masks with a full row, an empty row (when B > 2) and random rows."""
    if prefix:
        lengths = torch.randint(0, seq_len + 1, (batch,), generator=generator)
        mask = torch.arange(seq_len)[None] < lengths[:, None]  # (B, N)
    else:
        mask = torch.rand(batch, seq_len, generator=generator) < 0.6  # (B, N)
    mask[0] = True
    if batch > 2:
        mask[1] = False
    return mask


def _segment_reference(q, k, v, cu, max_len, dropout, scale, seqused_k=None):
    """Dense float64 attention restricted to the segments of ``cu``; (T, H, d) -> (T, H, d).

    With ``seqused_k`` a query sees the first ``seqused_k[s]`` keys of its segment ``s`` only;
    a query that sees no key outputs 0.
    """
    assert dropout == 0.0
    tokens = q.shape[0]
    positions = torch.arange(tokens)
    segment = torch.searchsorted(cu[1:].long(), positions, right=True)  # (T,)
    assert int((torch.diff(cu.long())).max()) <= max_len
    allowed = segment[:, None] == segment[None, :]  # (T, T)
    if seqused_k is not None:
        within = positions - cu.long()[segment]  # (T,) key's place in its segment
        allowed &= within[None, :] < seqused_k.long()[segment][:, None]
    scores = torch.einsum("thd,shd->hts", q.double(), k.double()) * scale  # (H, T, T)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
    return torch.einsum("hts,shd->thd", weights, v.double()).to(q.dtype)


@pytest.mark.parametrize("seq_len", LENGTHS)
@pytest.mark.parametrize("prefix", [True, False])
def test_prefix_order_sorts_real_tokens_first(seq_len: int, prefix: bool) -> None:
    gen = torch.Generator().manual_seed(seq_len)
    mask = _masks(4, seq_len, prefix, gen)
    order = key_padding.PrefixOrder(mask, pad_segments=1)
    flat = torch.arange(4 * seq_len)
    assert torch.equal(flat[order.index][order.inverse], flat)
    sorted_mask = order.sort(mask[..., None].float())[..., 0].bool()  # (B, N)
    lengths = mask.sum(1)
    assert torch.equal(sorted_mask, torch.arange(seq_len)[None] < lengths[:, None])
    rows = order.index.view(4, seq_len) // seq_len
    assert torch.equal(rows, torch.arange(4)[:, None].expand(4, seq_len))  # within its row
    real = order.index.view(4, seq_len)
    for b in range(4):  # stable: real tokens keep their order
        kept = real[b, : lengths[b]] % seq_len
        assert torch.equal(kept, torch.nonzero(mask[b])[:, 0])
    expected = [v for b in range(4) for v in (b * seq_len, b * seq_len + int(lengths[b]))]
    assert order.cu.tolist() == expected + [4 * seq_len] and order.cu.dtype == torch.int32
    x = torch.randn(4, seq_len, 3, requires_grad=True)
    back = order.unsort(order.sort(x))
    assert torch.equal(back, x)
    (grad,) = torch.autograd.grad((order.sort(x) * torch.arange(3.0)).sum(), x)
    assert torch.equal(grad, torch.arange(3.0).expand_as(x))


@pytest.mark.parametrize("pieces", [1, 2, 3, 5])
def test_padding_cut_into_segments(pieces: int) -> None:
    mask = torch.arange(9)[None] < torch.tensor([9, 0, 4, 8])[:, None]  # (4, 9)
    cu = key_padding.PrefixOrder(mask, pad_segments=pieces).cu.tolist()
    assert len(cu) == 4 * (1 + pieces) + 1 and cu[-1] == 36
    assert all(a <= b for a, b in zip(cu, cu[1:], strict=False))
    for b, length in enumerate([9, 0, 4, 8]):
        row = cu[b * (1 + pieces) : (b + 1) * (1 + pieces) + 1]
        assert row[0] == 9 * b and row[1] == 9 * b + length and row[-1] == 9 * (b + 1)
        sizes = [y - x for x, y in zip(row[1:], row[2:], strict=False)]
        assert sum(sizes) == 9 - length and max(sizes) == -(-(9 - length) // pieces)
    assert key_padding.PrefixOrder(mask, pad_segments=pieces).seqused_k is None
    with pytest.raises(ValueError, match="at least 0"):
        key_padding.PrefixOrder(mask, pad_segments=-1)


def test_padding_attending_to_no_key() -> None:
    """``pad_segments=0``: one padding segment per row, whose queries use no key."""
    mask = torch.arange(9)[None] < torch.tensor([9, 0, 4, 8])[:, None]  # (4, 9)
    order = key_padding.PrefixOrder(mask, pad_segments=0)
    assert order.cu.tolist() == [0, 9, 9, 9, 18, 22, 27, 35, 36]
    assert order.seqused_k is not None and order.seqused_k.dtype == torch.int32
    assert order.seqused_k.tolist() == [9, 0, 0, 0, 4, 0, 8, 0]


@pytest.fixture
def cpu_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the layer through the segment path on CPU with the dense reference kernel."""
    monkeypatch.setattr(key_padding, "varlen_available", lambda *args: True)
    monkeypatch.setattr(key_padding, "segment_attention", _segment_reference)


@pytest.mark.parametrize("seq_len", LENGTHS)
@pytest.mark.parametrize("prefix", [True, False])
@pytest.mark.parametrize(
    "options", [{}, {"use_rope": True}, {"qk_norm": True}, {"head_dim": 3, "bias": False}]
)
@pytest.mark.parametrize("pieces", [0, 4])
@pytest.mark.parametrize("masked_queries", ["zero", "all_keys"])
def test_segment_path_equals_masked_sdpa(
    cpu_segments: None,
    seq_len: int,
    prefix: bool,
    options: dict,
    pieces: int,
    masked_queries: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(key_padding, "PAD_SEGMENTS", pieces)
    torch.manual_seed(seq_len)
    layer = SoftmaxAttention(
        hidden_dim=16, num_heads=2, masked_queries=masked_queries, **options
    ).double()
    x = torch.randn(4, seq_len, 16, dtype=torch.float64, requires_grad=True)
    mask = _masks(4, seq_len, prefix, torch.Generator().manual_seed(seq_len + 1))
    got = layer(x, mask)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_padding, "varlen_available", lambda *args: False)
        want = layer(x, mask)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    cotangent = torch.randn_like(got)
    grads = torch.autograd.grad(got, [x, *layer.parameters()], cotangent)
    wants = torch.autograd.grad(want, [x, *layer.parameters()], cotangent)
    for g, w in zip(grads, wants, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("pieces", [2, 3, 4])
def test_cut_padding_gives_the_same_layer(
    cpu_segments: None, monkeypatch: pytest.MonkeyPatch, pieces: int
) -> None:
    torch.manual_seed(pieces)
    layer = SoftmaxAttention(hidden_dim=16, num_heads=2).double()
    x = torch.randn(4, 13, 16, dtype=torch.float64, requires_grad=True)
    mask = _masks(4, 13, prefix=False, generator=torch.Generator().manual_seed(pieces))
    monkeypatch.setattr(key_padding, "PAD_SEGMENTS", 1)
    want = layer(x, mask)
    monkeypatch.setattr(key_padding, "PAD_SEGMENTS", pieces)
    got = layer(x, mask)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(got.square().sum(), [x, *layer.parameters()])
    wants = torch.autograd.grad(want.square().sum(), [x, *layer.parameters()])
    for g, w in zip(grads, wants, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_segment_path_ignores_masked_tokens(cpu_segments: None) -> None:
    torch.manual_seed(0)
    layer = SoftmaxAttention(hidden_dim=16, num_heads=4).double()
    x = torch.randn(3, 11, 16, dtype=torch.float64)
    mask = _masks(3, 11, prefix=False, generator=torch.Generator().manual_seed(3))
    y = x.clone()
    y[~mask] = torch.randn(int((~mask).sum()), 16, dtype=torch.float64) * 100
    torch.testing.assert_close(layer(x, mask), layer(y, mask), rtol=0, atol=1e-12)
    assert bool((layer(x, mask)[~mask] == 0).all())


def test_segment_path_is_skipped_for_causal_alibi_and_weights(cpu_segments: None) -> None:
    calls = []
    key_padding_attention = key_padding.key_padding_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return key_padding_attention(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_padding, "key_padding_attention", counted)
        x, mask = torch.randn(2, 5, 8), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
        SoftmaxAttention(8, 2, causal=True)(x, mask)
        SoftmaxAttention(8, 2, alibi=True)(x, mask)
        SoftmaxAttention(8, 2)(x, mask, return_attention=True)
        SoftmaxAttention(8, 2)(x)
        assert calls == []
        SoftmaxAttention(8, 2)(x, mask)
        assert calls == [1]


def test_availability_rules() -> None:
    cpu = torch.device("cpu")
    assert not key_padding.varlen_available(cpu, torch.bfloat16, 64)
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        assert not key_padding.varlen_available(cuda, torch.float32, 64)
        assert not key_padding.varlen_available(cuda, torch.bfloat16, 257)


def test_availability_on_a_capable_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules past the device check, with the GPU's answers stubbed."""
    monkeypatch.setattr(key_padding, "_flash_capable", lambda index: True)
    monkeypatch.setattr(torch.backends.cuda, "flash_sdp_enabled", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    cuda = torch.device("cuda")
    assert key_padding.varlen_available(cuda, torch.bfloat16, 64)
    assert key_padding.varlen_available(cuda, torch.float16, 252)  # padded to 256
    assert not key_padding.varlen_available(cuda, torch.float32, 64)
    assert not key_padding.varlen_available(cuda, torch.bfloat16, 257)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    assert not key_padding.varlen_available(cuda, torch.bfloat16, 64)
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: False)
    monkeypatch.setattr(key_padding, "VARLEN_KEY_PADDING", False)
    assert not key_padding.varlen_available(cuda, torch.bfloat16, 64)


def test_the_availability_check_compiles_into_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traced by torch.compile, the check is a constant of one graph (no break), read again
    when the model is compiled again."""
    monkeypatch.setattr(key_padding, "_flash_capable", lambda index: True)
    monkeypatch.setattr(torch.version, "hip", None)
    cuda = torch.device("cuda")

    def uses_flash(x: torch.Tensor) -> torch.Tensor:
        return x + int(key_padding.varlen_available(cuda, torch.bfloat16, 4))

    torch._dynamo.reset()
    assert torch.compile(uses_flash, fullgraph=True, backend="eager")(torch.zeros(1)).item() == 1
    monkeypatch.setattr(torch.backends.cuda, "flash_sdp_enabled", lambda: False)
    torch._dynamo.reset()
    assert torch.compile(uses_flash, fullgraph=True, backend="eager")(torch.zeros(1)).item() == 0
    torch._dynamo.reset()


cuda_flash = pytest.mark.skipif(
    not (
        torch.cuda.is_available()
        and key_padding.varlen_available(torch.device("cuda"), torch.bfloat16, 64)
    ),
    reason="needs a CUDA GPU with flash attention (compute capability 8.0+)",
)


@cuda_flash
@pytest.mark.parametrize("seq_len", [1, 7, 64, 1000, 1023])
@pytest.mark.parametrize("head_dim", [4, 12, 64])
@pytest.mark.parametrize("prefix", [True, False])
@pytest.mark.parametrize("pieces", [0, 1, 4])
def test_flash_segments_match_masked_sdpa_on_gpu(
    monkeypatch: pytest.MonkeyPatch, seq_len: int, head_dim: int, prefix: bool, pieces: int
) -> None:
    monkeypatch.setattr(key_padding, "PAD_SEGMENTS", pieces)
    torch.manual_seed(seq_len)
    layer = SoftmaxAttention(hidden_dim=2 * head_dim, num_heads=2, head_dim=head_dim).cuda()
    x = torch.randn(5, seq_len, 2 * head_dim, device="cuda", requires_grad=True)
    mask = _masks(5, seq_len, prefix, torch.Generator().manual_seed(seq_len)).cuda()
    with torch.autocast("cuda", torch.bfloat16):
        got = layer(x, mask)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(key_padding, "VARLEN_KEY_PADDING", False)
            bf16_sdpa = layer(x, mask)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_padding, "VARLEN_KEY_PADDING", False)
        reference = layer(x, mask)  # float32, masked SDPA
    cotangent = torch.randn_like(reference)
    params = [x, *layer.parameters()]
    grads = torch.autograd.grad(got.float(), params, cotangent)
    sdpa_grads = torch.autograd.grad(bf16_sdpa.float(), params, cotangent)
    ref_grads = torch.autograd.grad(reference, params, cotangent)
    pairs = [(got.float(), bf16_sdpa.float(), reference)]
    pairs += list(zip(grads, sdpa_grads, ref_grads, strict=True))
    for ours, theirs, ref in pairs:  # no further from float32 than bf16 masked SDPA
        scale = float(ref.abs().max().clamp_min(1e-6))
        ours_error = float((ours - ref).abs().max()) / scale
        sdpa_error = float((theirs - ref).abs().max()) / scale
        assert ours_error <= 2 * sdpa_error + 1e-2, (ours_error, sdpa_error)


@cuda_flash
def test_flash_segments_with_dropout_ignore_masked_tokens_on_gpu() -> None:
    torch.manual_seed(0)
    layer = SoftmaxAttention(hidden_dim=64, num_heads=2, dropout=0.3).cuda().train()
    x = torch.randn(4, 300, 64, device="cuda")
    mask = _masks(4, 300, prefix=True, generator=torch.Generator().manual_seed(1)).cuda()
    y = x.clone()
    y[~mask] = torch.randn(int((~mask).sum()), 64, device="cuda") * 100
    outs = []
    for inputs in (x, y):
        torch.manual_seed(7)
        with torch.autocast("cuda", torch.bfloat16):
            outs.append(layer(inputs, mask).float())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.manual_seed(8)
    with torch.autocast("cuda", torch.bfloat16):
        other = layer(x, mask).float()
    assert not torch.equal(other, outs[0])  # the draws are the kernel's, seeded per call
