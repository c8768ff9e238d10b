"""The step benchmark runs on CPU at tiny shapes and writes its CSV and table."""

from __future__ import annotations

import csv

import pytest
import torch

from experiments import bench_step, bench_step_setup
from experiments.bench_step import (
    CSV_COLUMNS,
    NOT_RUN,
    AnchorEncoder,
    default_mixers,
    load_setup,
    main,
)
from experiments.bench_step_setup import mixer_length, mixing_path
from spectrans import registry
from spectrans.layers import dropout
from spectrans.layers.attention import favor_contract, key_padding
from spectrans.layers.attention.lst import LSTAttention
from spectrans.layers.attention.softmax import SoftmaxAttention

TINY = ["--device", "cpu", "--batch", "2", "--max-len", "16", "--steps", "1", "--warmup", "1"]
TINY += ["--windows", "1"]


@pytest.fixture(autouse=True)
def _eager_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``torch.compile`` as the identity: compiling on CPU takes seconds per model."""
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)


def _csv_rows(path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_writes_csv_and_markdown_on_cpu(tmp_path) -> None:
    argv = [
        "--device", "cpu", "--tasks", "pathfinder,image",
        "--mixers", "softmax,lst-dct,global_filter",
        "--batch", "2", "--max-len", "16", "--steps", "1", "--warmup", "1", "--windows", "1",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    with (tmp_path / "train_step.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [(r["task"], r["mixer"]) for r in rows] == [
        (t, m) for t in ("pathfinder", "image") for m in ("softmax", "lst-dct", "global_filter")
    ]
    for r in rows:
        assert float(r["ms_per_step"]) > 0 and float(r["tokens_per_s"]) > 0
        assert float(r["anchor_eager_ms"]) > 0 and float(r["anchor_compiled_ms"]) > 0
        assert r["compile"] == "eager" and r["dtype"] == "fp32" and r["device"]
        assert r["status"] == "ok" and r["note"] == "eager"
        assert r["path"] == ("fast" if r["mixer"] == "lst-dct" else "")
    text = (tmp_path / "train_step.md").read_text()
    assert "## pathfinder (batch 2, N = 16" in text and "| lst-dct |" in text


def test_preset_model_shape_and_optimizer_step_changes_weights() -> None:
    setup = load_setup("softmax", "pathfinder", batch=2, max_len=8)
    assert setup.shape["hidden"] == 32 and setup.shape["layers"] == 4
    assert setup.shape["heads"] == 4 and setup.shape["head_dim"] == 4
    from experiments.module import make_optimizer, parameter_groups

    model = setup.model.train()
    data = bench_step.random_batch(setup, torch.device("cpu"))
    inputs = {k: v for k, v in data.items() if k != "labels"}
    opt = make_optimizer(parameter_groups(model, 0.0), setup.optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    step = bench_step.make_train_step(
        model, lambda: model(**inputs), data["labels"], opt, "fp32", torch.device("cpu")
    )
    step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_pathfinder_batch_masks_black_pixels_as_its_preset_does() -> None:
    setup = load_setup("lst-dct", "pathfinder", batch=64, max_len=None)
    data = bench_step.random_batch(setup, torch.device("cpu"))
    ids, mask = data["input_ids"], data["attention_mask"]  # (B, N) each
    assert torch.equal(mask, ids > 0)
    ink = mask.float().mean().item()
    assert abs(ink - bench_step_setup.INK_FRACTION["pathfinder"]) < 0.01
    plain = load_setup(
        "lst-dct", "pathfinder", batch=4, max_len=None, overrides=["task.mask=lengths"]
    )
    assert "attention_mask" not in bench_step.random_batch(plain, torch.device("cpu"))


def test_anchor_rounds_head_width_up_to_eight() -> None:
    anchor = AnchorEncoder(10, 3, 12, hidden=16, layers=1, ffn=8, heads=4, head_dim=4)
    assert anchor.head_dim == 8
    assert anchor(torch.randint(0, 10, (2, 12))).shape == (2, 3)


def test_unknown_mixer_is_one_sentence() -> None:
    with pytest.raises(SystemExit, match="unknown value"):
        main(["--mixers", "nope"])


def test_default_mixers_are_every_registered_mixer_and_every_preset_variant() -> None:
    presets = bench_step._presets()
    mixers = default_mixers()
    assert len(set(mixers)) == len(mixers)
    assert set(presets.VARIANTS) <= set(mixers)
    groups = {group for group, _, _ in presets.VARIANTS.values()}
    for name in registry.names():
        assert name in mixers or name in groups, name
    for name in ("afno", "fno", "s4d", "wavelet", "lst-wavelet", "lra-performer", "kernel"):
        assert name in mixers


def test_registered_mixer_without_preset_gets_the_lra_attention_keys() -> None:
    # listops: 8 heads of width 64 (the kernel config's own default is 4 heads)
    setup = load_setup("kernel", "listops", batch=2, max_len=8)
    assert setup.shape["heads"] == 8 and setup.shape["head_dim"] == 64
    assert setup.shape["hidden"] == 512 and setup.shape["layers"] == 4
    layers = [m for m in setup.model.modules() if type(m) is registry.get_entry("kernel").cls]
    assert len(layers) == 4


def test_zero_time_budget_writes_every_row_as_not_run(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args, **kwargs):
        raise AssertionError("a row ran past the time budget")

    monkeypatch.setattr(bench_step, "time_model", never)  # the anchors
    monkeypatch.setattr(bench_step, "time_step_windows", never)  # the mixers
    argv = [*TINY, "--tasks", "pathfinder,image", "--mixers", "softmax,afno"]
    assert main([*argv, "--time-budget", "0", "--out", str(tmp_path)]) == 0
    rows = _csv_rows(tmp_path / "train_step.csv")
    assert [(r["task"], r["mixer"]) for r in rows] == [
        (t, m) for t in ("pathfinder", "image") for m in ("softmax", "afno")
    ]
    assert all(r["status"] == NOT_RUN and r["ms_per_step"] == "" for r in rows)
    text = (tmp_path / "train_step.md").read_text()
    assert text.count(f"| {NOT_RUN} |") == 4 and "## image (not run" in text
    assert "Time budget 0 s" in text and "Partial" not in text


def test_windows_give_the_median_and_the_note_lists_them(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = iter([[9.0, 7.0, 8.0], [5.0, 6.0, 4.0], [3.0, 2.0, 1.0]])  # anchor x2, softmax
    seen = []

    def fake_windows(step, device, warmup, steps, windows):
        seen.append(windows)
        return next(figures), None

    monkeypatch.setattr(bench_step, "time_step_windows", fake_windows)
    argv = [*TINY[:-2], "--windows", "3", "--tasks", "pathfinder", "--mixers", "softmax"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    (row,) = _csv_rows(tmp_path / "train_step.csv")
    assert seen == [3, 3, 3]
    assert float(row["anchor_eager_ms"]) == 8.0 and float(row["anchor_compiled_ms"]) == 5.0
    assert float(row["ms_per_step"]) == 2.0
    assert row["note"] == "eager 2.00 ms (windows 3.00/2.00/1.00)"


def test_windows_below_one_are_refused(capsys) -> None:
    with pytest.raises(SystemExit, match="--windows must be >= 1"):
        main([*TINY[:-2], "--windows", "0"])


def test_ab_writes_one_row_per_side_with_the_medians_of_their_windows(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def fake_ab(step, device, name, warmup, steps, windows):
        seen.append((name, windows))
        return {False: [9.0, 7.0, 8.0], True: [6.0, 4.0, 5.0]}, 123

    monkeypatch.setattr(bench_step, "time_ab", fake_ab)
    argv = [*TINY[:-2], "--windows", "3", "--tasks", "pathfinder", "--mixers", "performer"]
    argv += ["--compile", "all", "--ab", "logit-unroll", "--out", str(tmp_path)]
    assert main(argv) == 0
    off, on = _csv_rows(tmp_path / "train_step.csv")
    assert seen == [("logit-unroll", 3)]
    assert (float(off["ms_per_step"]), float(on["ms_per_step"])) == (8.0, 5.0)
    assert off["note"] == (
        "compiled 8.00 ms (windows 9.00/7.00/8.00); "
        "A/B logit-unroll off, windows interleaved with the other side's"
    )
    assert on["note"].startswith("compiled 5.00 ms (windows 6.00/4.00/5.00); A/B logit-unroll on")
    # CUDA graphs (the default compile mode): the peak over replays is no figure of the step
    assert off["peak_mem_bytes"] == on["peak_mem_bytes"] == ""


def test_ab_without_cuda_graphs_keeps_the_peak(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_step, "time_ab", lambda *a: ({False: [2.0], True: [1.0]}, 123))
    argv = [*TINY[:-2], "--tasks", "pathfinder", "--mixers", "performer", "--compile", "all"]
    argv += ["--compile-mode", "default", "--ab", "logit-unroll", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert [r["peak_mem_bytes"] for r in _csv_rows(tmp_path / "train_step.csv")] == ["123"] * 2


def test_ab_outside_the_compiled_tasks_is_an_error_row(tmp_path) -> None:
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "performer", "--compile", "all"]
    argv += ["--compile-tasks", "listops", "--ab", "hashed-dropout", "--out", str(tmp_path)]
    assert main(argv) == 0
    rows = _csv_rows(tmp_path / "train_step.csv")
    assert len(rows) == 2 and all("--compile-tasks lacks pathfinder" in r["status"] for r in rows)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--ab", "hashed-dropout"], "add --compile all"),
        (
            ["--ab", "hashed-dropout", "--compile", "all", "--hashed-dropout"],
            "drop --hashed-dropout",
        ),
        (["--ab", "logit-unroll", "--compile", "all", "--mixing-path", "gemm"], "--mixing-path"),
    ],
)
def test_ab_refuses_options_that_would_blur_it(options: list[str], words: str) -> None:
    with pytest.raises(SystemExit, match=words):
        main([*TINY, "--tasks", "pathfinder", "--mixers", "performer", *options])


def test_a_negative_logit_unroll_is_refused() -> None:
    with pytest.raises(SystemExit, match="--logit-unroll must be at least 0, got -1"):
        main([*TINY, "--tasks", "pathfinder", "--mixers", "performer", "--logit-unroll", "-1"])


def test_budget_spent_after_the_first_row_skips_the_rest(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = iter([False, False, True])  # before the anchor, softmax, then afno
    monkeypatch.setattr(bench_step, "_spent", lambda deadline: next(checks))
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "softmax,afno", "--out", str(tmp_path)]
    assert main([*argv, "--time-budget", "5", "--compile", "auto"]) == 0
    first, second = _csv_rows(tmp_path / "train_step.csv")
    assert first["status"] == "ok" and float(first["ms_per_step"]) > 0
    eager, compiled = (float(t.split()[-2]) for t in first["note"].split(": ")[1].split(", "))
    assert first["note"].startswith("auto: eager ") and ", compiled " in first["note"]
    assert float(first["ms_per_step"]) == pytest.approx(min(eager, compiled), abs=0.01)
    assert second["mixer"] == "afno" and second["status"] == NOT_RUN
    assert second["ms_per_step"] == "" and second["anchor_eager_ms"] == first["anchor_eager_ms"]
    assert f"| afno | {NOT_RUN} |" in (tmp_path / "train_step.md").read_text()


def test_rows_are_written_as_they_finish(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bench_step.load_setup

    def load(mixer, *args, **kwargs):
        if mixer == "afno":
            raise KeyboardInterrupt  # the run is stopped while afno is being set up
        return real(mixer, *args, **kwargs)

    monkeypatch.setattr(bench_step, "load_setup", load)
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "softmax,afno,fnet", "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    (row,) = _csv_rows(tmp_path / "train_step.csv")
    assert row["mixer"] == "softmax" and float(row["ms_per_step"]) > 0
    text = (tmp_path / "train_step.md").read_text()
    assert "| softmax |" in text and "Partial: 1 of 3 planned rows" in text
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failing_row_is_recorded_and_the_run_goes_on(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench_step.load_setup

    def load(mixer, *args, **kwargs):
        if mixer == "afno":
            raise RuntimeError("broken | layer")
        return real(mixer, *args, **kwargs)

    monkeypatch.setattr(bench_step, "load_setup", load)
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "afno,fnet", "--out", str(tmp_path)]
    assert main([*argv, "--compile", "auto", "--compile-tasks", "image"]) == 0
    failed, ok = _csv_rows(tmp_path / "train_step.csv")
    assert failed["status"] == "error: RuntimeError: broken | layer" and ok["status"] == "ok"
    assert ok["note"] == "eager (--compile applies to image)" and ok["compile"] == "eager"
    assert (
        "| afno | error: RuntimeError: broken \\| layer |"
        in (tmp_path / "train_step.md").read_text()
    )


def test_triton_kernels_switch_turns_both_kernel_routes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from spectrans.layers.attention import favor_contract, softmax

    monkeypatch.setattr(softmax, "SMALL_HEAD_MAX_DIM", None)
    monkeypatch.setattr(favor_contract, "TRITON_KERNELS", False)
    assert bench_step.parse_args(["--triton-kernels"]).triton_kernels
    assert not bench_step.parse_args([]).triton_kernels
    bench_step.use_triton_kernels()
    assert softmax.SMALL_HEAD_MAX_DIM == 16 and favor_contract.TRITON_KERNELS is True


def test_path_names_the_softmax_key_padding_path(monkeypatch: pytest.MonkeyPatch) -> None:
    model = torch.nn.Sequential(SoftmaxAttention(8, 2), SoftmaxAttention(8, 2, causal=True))
    cpu = torch.device("cpu")
    assert mixing_path(model, 16, cpu) == ""
    assert mixing_path(model, 16, cpu, masked=True) == "masked sdpa"
    monkeypatch.setattr(key_padding, "varlen_available", lambda *args: True)
    assert mixing_path(model, 16, cpu, masked=True, dtype="bf16") == "segments"
    assert load_setup("softmax", "listops", 2, 16).padded  # ListOps steps pass their key mask


def test_path_is_asked_at_the_length_the_mixers_see() -> None:
    cuda = torch.device("cuda")
    lst = load_setup("lst-dct", "listops", 2, 16).model  # CLS token: the layers see N + 1
    assert mixer_length(lst, 2000) == 2001
    assert mixing_path(lst, 2000, cuda) == "folded"  # odd length: the folded DCT
    assert mixing_path(lst, 2001, cuda) == "gemm"
    fnet = load_setup("fnet", "listops", 2, 16).model
    assert mixing_path(fnet, 2000, cuda) == "fft"
    assert mixing_path(fnet, 2000, cuda, compiled=True) == "fft_traced"
    plain = torch.nn.Sequential(LSTAttention(16, 4, "dct"))
    assert mixer_length(plain, 2000) == 2000


@pytest.mark.parametrize(("choice", "recomputes"), [("on", True), ("off", False)])
def test_recompute_option_chooses_the_backward_of_the_timed_step(
    tmp_path, monkeypatch: pytest.MonkeyPatch, choice: str, recomputes: bool
) -> None:
    from spectrans.layers.attention import chunked_recompute, lst_recompute
    from spectrans.layers.attention.lst import _LSTFilterAttention
    from spectrans.layers.attention.spectral import _FeatureAttention
    from spectrans.layers.mixing.s4d import S4DMixing

    for cls in (_LSTFilterAttention, _FeatureAttention, S4DMixing):
        monkeypatch.setattr(cls, "recompute_mixing", cls.recompute_mixing)  # restored after
    calls: list[str] = []
    spied = ((lst_recompute, "GatedMixRecompute"), (chunked_recompute, "_ChunkedRecompute"))
    for module, name in spied:
        function = getattr(module, name)
        original = function.apply

        def spy(*args, _original=original, _name=name):  # noqa: ANN002, ANN202
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(function, "apply", spy)
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "lst-dct,performer,s4d"]
    assert main([*argv, "--recompute", choice, "--out", str(tmp_path)]) == 0
    rows = _csv_rows(tmp_path / "train_step.csv")
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert set(calls) == ({"GatedMixRecompute", "_ChunkedRecompute"} if recomputes else set())
    assert f"--recompute {choice}" in (tmp_path / "train_step.md").read_text()


def test_mixing_path_option_forces_the_path_and_records_it(tmp_path) -> None:
    argv = [*TINY, "--tasks", "listops", "--mixers", "fnet,lst-dct,softmax"]
    assert main([*argv, "--mixing-path", "gemm", "--out", str(tmp_path)]) == 0
    rows = {r["mixer"]: r for r in _csv_rows(tmp_path / "train_step.csv")}
    assert rows["fnet"]["status"] == "ok" and rows["fnet"]["path"] == "gemm"
    assert rows["lst-dct"]["status"] == "ok" and rows["lst-dct"]["path"] == "gemm"
    assert rows["softmax"]["status"].startswith("error: ValueError: no mixing layer")
    assert "--mixing-path gemm" in (tmp_path / "train_step.md").read_text()


def test_mixing_path_list_times_each_path_beside_one_anchor(tmp_path) -> None:
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "afno,fnet"]
    assert main([*argv, "--mixing-path", "blocks,dense,auto", "--out", str(tmp_path)]) == 0
    rows = _csv_rows(tmp_path / "train_step.csv")
    got = [(r["mixer"], r["path"], r["status"][:5]) for r in rows]
    assert got == [
        ("afno", "blocks", "ok"),
        ("afno", "dense", "ok"),
        ("afno", "blocks", "ok"),  # auto on CPU
        ("fnet", "", "error"),
        ("fnet", "", "error"),
        ("fnet", "fft", "ok"),
    ]
    assert len({(r["anchor_eager_ms"], r["anchor_compiled_ms"]) for r in rows}) == 1


def test_force_mixing_path_names_the_paths_there_are() -> None:
    from spectrans.layers.mixing.fourier import FourierMixing

    model = torch.nn.Sequential(FourierMixing(8), SoftmaxAttention(8, 2))
    assert bench_step.force_mixing_path(model, "factored") == 1
    assert model[0].mixing_path == "factored"
    with pytest.raises(ValueError, match="its paths: auto, factored, fft, fft_traced, gemm"):
        bench_step.force_mixing_path(model, "dense")


def test_every_mixer_class_with_paths_names_them_in_its_annotation() -> None:
    """``--mixing-path`` reads each layer's choices off its ``mixing_path`` annotation."""
    from experiments.bench_step_setup import path_choices

    with_paths = {}
    for entry in registry.entries():
        cls = entry.cls
        if hasattr(cls, "mixing_path"):
            layer = cls.__new__(cls)  # the class's annotation is all that is read
            with_paths[entry.name] = path_choices(layer)
    assert with_paths["fnet"] == ("auto", "fft", "fft_traced", "gemm", "factored")
    assert with_paths["afno"] == ("auto", "blocks", "dense")
    assert all(choices and choices[0] == "auto" for choices in with_paths.values())


def test_overrides_reach_the_preset_model() -> None:
    """``--override model.dropout=0 ...`` builds the preset without any active dropout."""
    args = bench_step.parse_args(
        ["--override", "model.dropout=0", "--override", "model.attention_dropout=0"]
    )
    assert args.override == ["model.dropout=0", "model.attention_dropout=0"]

    def active(model: torch.nn.Module) -> list[float]:
        """Dropout rates above 0: of nn.Dropout modules and of layers' float ``dropout``."""
        rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        rates += [
            m.dropout for m in model.modules() if isinstance(getattr(m, "dropout", None), float)
        ]
        return [r for r in rates if r > 0]

    preset = load_setup("softmax", "pathfinder", batch=2, max_len=8)
    plain = load_setup("softmax", "pathfinder", batch=2, max_len=8, overrides=args.override)
    assert sorted(set(active(preset.model))) == [0.1, 0.2] and not active(plain.model)


def test_rows_name_the_options_that_changed_the_presets_step(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dropout, "HASHED_MASKS_WHEN_COMPILED", False)  # restored afterwards
    monkeypatch.setattr(key_padding, "PAD_SEGMENTS", key_padding.PAD_SEGMENTS)
    monkeypatch.setattr(
        favor_contract, "UNROLLED_LOGITS_MAX_WIDTH", favor_contract.UNROLLED_LOGITS_MAX_WIDTH
    )
    argv = [*TINY, "--tasks", "pathfinder", "--mixers", "lst-dct", "--out", str(tmp_path)]
    options = ["--override", "model.dropout=0", "--recompute", "on", "--hashed-dropout"]
    assert main([*argv, *options, "--pad-segments", "0", "--logit-unroll", "8"]) == 0
    (row,) = _csv_rows(tmp_path / "train_step.csv")
    assert row["note"] == (
        "eager; overrides: model.dropout=0; hashed dropout; pad segments 0; logit unroll 8; "
        "recompute on"
    )
    assert dropout.HASHED_MASKS_WHEN_COMPILED and key_padding.PAD_SEGMENTS == 0
    assert favor_contract.UNROLLED_LOGITS_MAX_WIDTH == 8
    assert main(argv) == 0  # the presets as they are: the note names the mode only
    (row,) = _csv_rows(tmp_path / "train_step.csv")
    assert row["note"] == "eager"


def test_padded_batches_hold_token_zero_at_padded_positions() -> None:
    """As the collator pads: id 0 exactly where the mask is False."""
    setup = load_setup("lst-dct", "listops", batch=16, max_len=64)
    data = bench_step.random_batch(setup, torch.device("cpu"))
    ids, mask = data["input_ids"], data["attention_mask"]  # (B, N) each
    assert torch.equal(ids == 0, ~mask) and not bool(mask.all())
