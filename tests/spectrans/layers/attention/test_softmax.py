import math

import pytest
import torch

from spectrans.config.layers.attention import SoftmaxAttentionConfig
from spectrans.layers.alibi import alibi_slopes
from spectrans.layers.attention.softmax import SoftmaxAttention
from spectrans.registry import build_layer

LENGTHS = [1, 2, 7, 100, 128]


def _random_mask(batch: int, seq_len: int) -> torch.Tensor:
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0] = seq_len
    return torch.arange(seq_len)[None] < lengths[:, None]  # (B, N)


def _oracle(layer: SoftmaxAttention, x: torch.Tensor, mask: torch.Tensor | None):
    """Explicit float64 attention from the layer's weights (independent of its helpers)."""
    x = x.double()
    batch, seq_len, _ = x.shape
    heads, d = layer.num_heads, layer.head_dim

    def proj(linear: torch.nn.Linear) -> torch.Tensor:
        w = linear.weight.double()
        b = linear.bias.double() if linear.bias is not None else 0.0
        return (x @ w.T + b).view(batch, seq_len, heads, d).transpose(1, 2)

    q, k, v = proj(layer.q_proj), proj(layer.k_proj), proj(layer.v_proj)
    if layer.q_norm is not None:
        q = torch.nn.functional.layer_norm(
            q, (d,), layer.q_norm.weight.double(), layer.q_norm.bias.double(), layer.q_norm.eps
        )
        k = torch.nn.functional.layer_norm(
            k, (d,), layer.k_norm.weight.double(), layer.k_norm.bias.double(), layer.k_norm.eps
        )
    if layer.use_rope:
        inv = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        ang = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv  # (N, d/2)

        def rot(t: torch.Tensor) -> torch.Tensor:
            e, o = t[..., 0::2], t[..., 1::2]
            return torch.stack(
                (e * ang.cos() - o * ang.sin(), e * ang.sin() + o * ang.cos()), -1
            ).flatten(-2)

        q, k = rot(q), rot(k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)  # (B, H, N, N)
    if layer.alibi:
        pos = torch.arange(seq_len, dtype=torch.float64)
        dist = (pos[None] - pos[:, None]).abs()
        scores = scores - alibi_slopes(heads).double()[:, None, None] * dist
    allowed = torch.ones(batch, 1, seq_len, seq_len, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask[:, None, None, :]
    if layer.causal:
        allowed = allowed & torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.nan_to_num(scores.softmax(-1), nan=0.0)
    out = (weights @ v).transpose(1, 2).reshape(batch, seq_len, heads * d)
    out = out @ layer.out_proj.weight.double().T + layer.out_proj.bias.double()
    if mask is not None:
        out = out * mask[..., None]
        weights = weights * mask[:, None, :, None]
    return out, weights


OPTIONS = [
    {},
    {"causal": True},
    {"alibi": True},
    {"use_rope": True},
    {"qk_norm": True},
    {"causal": True, "alibi": True, "use_rope": True, "qk_norm": True},
]


@pytest.mark.parametrize("seq_len", LENGTHS)
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("use_mask", [False, True])
def test_matches_float64_oracle(seq_len: int, options: dict, use_mask: bool) -> None:
    layer = SoftmaxAttention(32, 4, init_weights="truncnormal", **options).eval()
    x = torch.randn(3, seq_len, 32)
    mask = _random_mask(3, seq_len) if use_mask else None
    expected, expected_weights = _oracle(layer, x, mask)
    torch.testing.assert_close(layer(x, mask).double(), expected, atol=2e-5, rtol=1e-4)
    out, weights = layer(x, mask, return_attention=True)
    assert weights.shape == (3, 4, seq_len, seq_len)
    torch.testing.assert_close(out.double(), expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(weights.double(), expected_weights, atol=2e-6, rtol=1e-4)


@pytest.mark.parametrize("seq_len", LENGTHS)
@pytest.mark.parametrize("options", [{}, {"causal": True, "alibi": True, "use_rope": True}])
def test_masking_is_exact(seq_len: int, options: dict) -> None:
    layer = SoftmaxAttention(32, 4, init_weights="truncnormal", **options).eval()
    x = torch.randn(4, seq_len, 32)
    mask = _random_mask(4, seq_len)
    moved = torch.where(mask[..., None], x, 100.0 * torch.randn_like(x))
    out, out_moved = layer(x, mask), layer(moved, mask)
    assert (out_moved[~mask] == 0).all()
    assert (out - out_moved).abs().max() <= 1e-6


@pytest.mark.parametrize("seq_len", [2, 7, 100, 128])
@pytest.mark.parametrize("options", [{}, {"alibi": True, "use_rope": True, "qk_norm": True}])
def test_causal_is_exact(seq_len: int, options: dict) -> None:
    layer = SoftmaxAttention(32, 4, causal=True, init_weights="truncnormal", **options).eval()
    x = torch.randn(2, seq_len, 32)
    cut = seq_len // 2
    moved = x.clone()
    moved[:, cut:] = 50.0 * torch.randn_like(moved[:, cut:])
    assert (layer(x)[:, :cut] - layer(moved)[:, :cut]).abs().max() <= 1e-6


def test_all_masked_rows_give_no_nan() -> None:
    layer = SoftmaxAttention(16, 2, causal=True, alibi=True).eval()
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    for out in (layer(x, mask), layer(x, mask, return_attention=True)[0]):
        assert torch.isfinite(out).all()
        assert (out[~mask] == 0).all()
    weights = layer(x, mask, return_attention=True)[1]
    assert torch.isfinite(weights).all()


def test_rope_scores_depend_on_relative_position_only() -> None:
    layer = SoftmaxAttention(32, 2, use_rope=True, init_weights="truncnormal").eval()
    x = torch.randn(1, 1, 32).expand(1, 24, 32)  # the same token at every position
    weights = layer(x, return_attention=True)[1][0].double()  # (H, N, N)
    log_w = weights.log()
    for offset in (1, 3, 5):
        # score(i, i + offset) - score(i, i) must not depend on i.
        diffs = torch.stack([log_w[:, i, i + offset] - log_w[:, i, i] for i in range(24 - offset)])
        assert (diffs - diffs[0]).abs().max() < 1e-4
        assert diffs.abs().max() > 1e-3  # and rope does move the scores


def test_qk_norm_changes_outputs() -> None:
    plain = SoftmaxAttention(32, 4, init_weights="truncnormal").eval()
    normed = SoftmaxAttention(32, 4, init_weights="truncnormal", qk_norm=True).eval()
    normed.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 10, 32)
    assert (plain(x) - normed(x)).abs().max() > 1e-3


def test_fast_causal_path_matches_explicit_path() -> None:
    layer = SoftmaxAttention(32, 4, causal=True, init_weights="truncnormal").eval()
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(layer(x), layer(x, return_attention=True)[0], atol=1e-5, rtol=0)


def test_flags_defaults_and_config() -> None:
    assert SoftmaxAttention.has_queries_keys and SoftmaxAttention.has_scores
    assert SoftmaxAttention.supports_causal
    assert SoftmaxAttention()(torch.randn(1, 3, 512)).shape == (1, 3, 512)
    cfg = SoftmaxAttentionConfig(hidden_dim=64, num_heads=4, alibi=True, causal=True)
    layer = SoftmaxAttention.from_config(cfg)
    assert layer.alibi and layer.causal and layer.head_dim == 16
    assert isinstance(
        build_layer({"name": "softmax", "hidden_dim": 64, "num_heads": 4}), SoftmaxAttention
    )
    assert SoftmaxAttention(32, 4, head_dim=6).q_proj.out_features == 24


@pytest.mark.parametrize("seq_len", [1000, 1024])
def test_long_sequences_run(seq_len: int) -> None:
    layer = SoftmaxAttention(16, 2, causal=True).eval()
    mask = _random_mask(2, seq_len)
    out = layer(torch.randn(2, seq_len, 16), mask)
    assert out.shape == (2, seq_len, 16) and torch.isfinite(out).all()


def test_bad_arguments_raise_one_sentence() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        SoftmaxAttention(30, 4)
    with pytest.raises(ValueError, match="even head_dim"):
        SoftmaxAttention(12, 4, use_rope=True)
    with pytest.raises(ValueError, match="mask has shape"):
        SoftmaxAttention(16, 2)(torch.randn(1, 3, 16), torch.ones(1, 4, dtype=torch.bool))


def test_dropout_only_in_training() -> None:
    layer = SoftmaxAttention(16, 2, dropout=0.5, init_weights="truncnormal")
    x = torch.randn(2, 6, 16)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    layer.train()
    assert (layer(x) - layer(x)).abs().max() > 0


@pytest.mark.parametrize("options", [{}, {"causal": True, "alibi": True}])
def test_bf16_autocast_runs_and_stays_close(options: dict) -> None:
    layer = SoftmaxAttention(32, 4, init_weights="truncnormal", **options).eval()
    x, mask = torch.randn(2, 12, 32), _random_mask(2, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, mask)
        out_slow = layer(x, mask, return_attention=True)[0]
    for result in (out, out_slow):
        assert torch.isfinite(result.float()).all()
        assert (result.float() - layer(x, mask)).abs().max() < 0.05


@pytest.mark.parametrize("head_dim", [4, 12, 16, 64])
@pytest.mark.parametrize("options", [{}, {"causal": True}])
@pytest.mark.parametrize("use_mask", [False, True])
def test_head_dim_padding_is_exact(
    head_dim: int, options: dict, use_mask: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SDPA call gets a width divisible by 8; outputs and grads match the exact math."""
    widths: list[int] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        widths.append(q.shape[-1])
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording_sdpa)
    torch.manual_seed(head_dim)
    layer = SoftmaxAttention(32, 3, head_dim=head_dim, init_weights="truncnormal", **options)
    layer = layer.double()
    x = torch.randn(2, 13, 32, dtype=torch.float64, requires_grad=True)
    mask = _random_mask(2, 13) if use_mask else None
    out = layer(x, mask)
    ref, _ = _oracle(layer, x, mask)
    assert widths and all(w % 8 == 0 and w >= head_dim for w in widths)
    assert torch.allclose(out, ref, atol=1e-10)
    grad = torch.randn_like(out)
    (g_out,) = torch.autograd.grad(out, x, grad)
    (g_ref,) = torch.autograd.grad(ref, x, grad)
    assert torch.allclose(g_out, g_ref, atol=1e-10)


def _lra_masked_oracle(layer: SoftmaxAttention, x: torch.Tensor, mask: torch.Tensor):
    """The LRA code's masked attention in float32, from the layer's weights.

    Scores get ``-1e10`` wherever the query or the key is masked (``make_attention_mask`` of
    the two masks as an additive bias); softmax in float32; nothing is zeroed afterwards.
    """
    batch, seq_len, _ = x.shape
    heads, d = layer.num_heads, layer.head_dim

    def proj(linear: torch.nn.Linear) -> torch.Tensor:
        out = x @ linear.weight.T + (linear.bias if linear.bias is not None else 0.0)
        return out.view(batch, seq_len, heads, d).transpose(1, 2)  # (B, H, N, d)

    q, k, v = proj(layer.q_proj), proj(layer.k_proj), proj(layer.v_proj)
    pair = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, N, N) query and key real
    bias = torch.where(pair, 0.0, -1e10)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(d) + bias).softmax(-1)  # (B, H, N, N)
    out = (weights @ v).transpose(1, 2).reshape(batch, seq_len, heads * d)
    return layer.out_proj(out), weights


@pytest.mark.parametrize("seq_len", [1, 7, 100, 128])
@pytest.mark.parametrize("options", [{}, {"alibi": True}, {"use_rope": True, "qk_norm": True}])
def test_all_keys_rule_matches_the_lra_code(seq_len: int, options: dict) -> None:
    """``masked_queries='all_keys'``: unmasked rows as before, masked rows the mean of V."""
    torch.manual_seed(seq_len)
    layer = SoftmaxAttention(
        32, 4, init_weights="truncnormal", masked_queries="all_keys", **options
    ).eval()
    x = torch.randn(3, seq_len, 32)
    mask = torch.rand(3, seq_len) < 0.4
    mask[0] = True
    zero_rule = SoftmaxAttention(32, 4, init_weights="truncnormal", **options).eval()
    zero_rule.load_state_dict(layer.state_dict())
    got, got_weights = layer(x, mask, return_attention=True)
    torch.testing.assert_close(layer(x, mask), got, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got[mask], zero_rule(x, mask)[mask], atol=2e-5, rtol=1e-4)
    mean_v = layer.v_proj(x).mean(1, keepdim=True)  # (B, 1, H*d): every token's value
    want_masked = layer.out_proj(mean_v).expand_as(got)[~mask]
    torch.testing.assert_close(got[~mask], want_masked, atol=2e-5, rtol=1e-4)
    assert torch.equal(
        got_weights[~mask[:, None, :].expand(-1, 4, -1)],
        torch.full_like(got_weights[~mask[:, None, :].expand(-1, 4, -1)], 1.0 / seq_len),
    )
    if not options:  # the LRA code's own computation, float32 bias of -1e10
        want, want_weights = _lra_masked_oracle(layer, x, mask)
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(got_weights, want_weights, atol=2e-6, rtol=1e-4)


def test_float32_bias_of_minus_1e10_makes_masked_rows_uniform() -> None:
    """Why the LRA rule is a uniform row: 1e10 is exact in float32 and its spacing is 1024."""
    scores = torch.randn(5, 64) * 100.0  # logits far larger than any trained model's
    weights = (scores + torch.tensor(-1e10)).softmax(-1)  # float32
    assert torch.equal(weights, torch.full_like(weights, 1.0 / 64))
    assert not torch.allclose((scores.double() - 1e10).softmax(-1), weights.double())


def test_all_keys_rule_reads_masked_tokens_only_at_masked_positions() -> None:
    layer = SoftmaxAttention(32, 4, init_weights="truncnormal", masked_queries="all_keys").eval()
    x = torch.randn(4, 50, 32)
    mask = torch.rand(4, 50) < 0.5
    mask[:, 0] = True
    moved = torch.where(mask[..., None], x, x + torch.randn_like(x))
    out, out_moved = layer(x, mask), layer(moved, mask)
    assert (out[mask] - out_moved[mask]).abs().max() <= 1e-6  # real queries see real keys
    assert (out[~mask] - out_moved[~mask]).abs().min() > 0  # masked ones see every value


def test_all_keys_rule_options_are_checked() -> None:
    with pytest.raises(ValueError, match="cannot be combined with causal=True"):
        SoftmaxAttention(16, 2, causal=True, masked_queries="all_keys")
    with pytest.raises(ValueError, match="masked_queries must be one of zero, all_keys"):
        SoftmaxAttention(16, 2, masked_queries="uniform")  # type: ignore[arg-type]
    cfg = SoftmaxAttentionConfig(hidden_dim=16, num_heads=2, masked_queries="all_keys")
    assert SoftmaxAttention.from_config(cfg).masked_queries == "all_keys"
    assert SoftmaxAttention(16, 2).masked_queries == "zero"
