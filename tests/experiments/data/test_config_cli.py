import pydantic
import pytest

from experiments.data import build_datamodule
from experiments.data.__main__ import main
from experiments.data.config import parse_task_config


@pytest.mark.parametrize(
    ("name", "length", "pair", "classes"),
    [
        ("listops", 2000, False, 10),
        ("text", 1000, False, 2),
        ("retrieval", 4000, True, 2),
        ("image", 1024, False, 10),
        ("pathfinder", 1024, False, 2),
        ("pathx", 16384, False, 2),
    ],
)
def test_facts_are_known_before_setup(tmp_path, name, length, pair, classes):
    dm = build_datamodule({"name": name}, data_dir=tmp_path, batch_size=2)
    assert (dm.max_length, dm.is_pair, dm.num_classes) == (length, pair, classes)
    assert dm.input_type == "tokens" and dm.vocab_size > 0


def test_unknown_keys_and_values_are_rejected():
    with pytest.raises(pydantic.ValidationError, match="max_lenght"):
        parse_task_config({"name": "text", "max_lenght": 4000})
    with pytest.raises(pydantic.ValidationError):
        parse_task_config({"name": "pathfinder", "resolution": 48})
    with pytest.raises(pydantic.ValidationError, match="summing to 1"):
        parse_task_config({"name": "pathfinder", "split_fractions": (0.8, 0.1, 0.2)})
    with pytest.raises(pydantic.ValidationError):
        parse_task_config({"name": "lisptops"})
    assert parse_task_config({"name": "pathfinder", "resolution": 64}).path == (
        "pathfinder64/curv_contour_length_14"
    )


def test_omegaconf_nodes_are_accepted():
    from omegaconf import OmegaConf

    node = OmegaConf.create({"name": "listops", "max_length": 2048, "generate": {"size": "tiny"}})
    cfg = parse_task_config(node)
    assert cfg.max_length == 2048 and cfg.generate.size == "tiny"


def test_cli_generates_listops_and_prints_instructions(tmp_path, capsys):
    assert main(["listops", "--size", "tiny", "--seed", "1", "--out", str(tmp_path / "lo")]) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and (tmp_path / "lo" / "basic_test.tsv").is_file()
    assert main(["retrieval", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "tsv_data") in out and "new_aan_pairs.eval.tsv" in out
