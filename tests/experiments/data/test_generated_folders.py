"""Generated data is complete or absent: the manifest written last decides."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments.data import DataCorruptError, build_datamodule
from experiments.data.listops_generator import folder_state as listops_state
from experiments.data.listops_generator import generate_listops
from experiments.data.pathfinder_folder import folder_state
from experiments.data.pathfinder_generator import generate_pathfinder

KW = dict(resolution=32, num_images=12, images_per_subdir=4, workers=1, progress=False)


def tree(root):
    return {
        str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()
    }


def pathfinder_dm(root, tmp_path, **extra):
    cfg = {"name": "pathfinder", "path": str(root), "resolution": 32, **extra}
    return build_datamodule(cfg, data_dir=tmp_path, batch_size=2)


def one_sentence(text):
    text = text.strip()
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.fixture()
def complete(tmp_path):
    root = generate_pathfinder(tmp_path / "pf", seed=1, **KW)
    return root, tree(root)


def kill_after_first_batch(root):
    """What a kill leaves once metadata/0.npy exists: a temp folder, no manifest."""
    (root / "manifest.json").unlink()
    for b in (1, 2):
        (root / "metadata" / f"{b}.npy").unlink()
        shutil.rmtree(root / "imgs" / str(b))
    (root / "imgs" / ".tmp-1").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "imgs" / ".tmp-1" / "sample_0.png")


def test_manifest_is_written_last_and_records_the_run(complete):
    root, _ = complete
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["num_images"] == 12 and manifest["seed"] == 1 and manifest["version"] == 2
    assert len(manifest["checksum"]) == 64
    assert folder_state(root) == ("complete", "")


def test_killed_run_is_refused_by_the_reader_in_one_sentence(complete, tmp_path):
    root, _ = complete
    kill_after_first_batch(root)
    assert folder_state(root)[0] == "incomplete"
    with pytest.raises(DataCorruptError) as err:
        pathfinder_dm(root, tmp_path).setup()
    msg = one_sentence(str(err.value))
    assert "incomplete" in msg and "python -m experiments.data pathfinder" in msg


def test_killed_run_is_reported_and_finished(complete, capsys):
    root, before = complete
    kill_after_first_batch(root)
    generate_pathfinder(root, seed=1, **KW)
    assert "is incomplete" in one_sentence(capsys.readouterr().err)
    assert tree(root) == before  # byte-identical to the uninterrupted run, no leftovers


def test_prepare_data_regenerates_a_killed_folder(tmp_path, capsys):
    gen = {"num_images": 6, "seed": 2}
    root = tmp_path / "pf"
    pathfinder_dm(root, tmp_path, generate=gen).prepare_data()
    before = tree(root)
    (root / "manifest.json").unlink()  # killed before the manifest
    (root / "metadata" / "0.npy").unlink()
    dm = pathfinder_dm(root, tmp_path, generate=gen)
    dm.prepare_data()
    assert "incomplete" in capsys.readouterr().err
    assert tree(root) == before
    dm.setup()
    assert sum(len(dm.datasets[s]) for s in ("train", "val", "test")) == 6


def test_reader_refuses_files_that_disagree_with_the_manifest(complete, tmp_path):
    root, _ = complete
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(root / "imgs" / "1" / "sample_2.png")
    with pytest.raises(DataCorruptError, match="checksum"):
        pathfinder_dm(root, tmp_path).setup()


def test_reader_refuses_a_manifest_of_another_resolution(complete, tmp_path):
    root, _ = complete
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["params"]["resolution"] = 64
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataCorruptError, match="resolution=64"):
        pathfinder_dm(root, tmp_path).setup()


def test_older_generator_version_is_regenerated(complete, capsys):
    root, before = complete
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["version"] = 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert folder_state(root)[0] == "stale"
    generate_pathfinder(root, seed=1, **KW)
    assert "regenerating it from scratch" in one_sentence(capsys.readouterr().err)
    assert tree(root) == before


def test_official_data_is_never_overwritten(tmp_path):
    root = tmp_path / "official"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "0.npy").write_text("imgs/0 sample_0.png 0 1 1.0 14 4.0 2 0.5 1 1\n")
    assert folder_state(root)[0] == "official"
    with pytest.raises(ValueError, match="did not write"):
        generate_pathfinder(root, seed=1, **KW)


def test_cli_rejects_negative_image_count_in_one_sentence(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.data",
            "pathfinder",
            "--num-images",
            "-5",
            "--out",
            str(tmp_path / "pf"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "--num-images -5" in one_sentence(out.stderr)
    assert not (tmp_path / "pf").exists()


def test_listops_kill_is_refused_then_regenerated(tmp_path, capsys):
    root = tmp_path / "listops-1000"
    generate_listops(root, sizes=(20, 5, 5), seed=3, progress=False)
    before = tree(root)
    assert listops_state(root)[0] == "complete"
    (root / "manifest.json").unlink()  # killed between the renames
    (root / "basic_test.tsv").rename(root / ".basic_test.tsv.tmp-99")
    assert listops_state(root)[0] == "incomplete"
    dm = build_datamodule({"name": "listops"}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataCorruptError) as err:
        dm.setup()
    assert "incomplete" in one_sentence(str(err.value))
    generate_listops(root, sizes=(20, 5, 5), seed=3, progress=False)
    assert "incomplete" in capsys.readouterr().err
    assert tree(root) == before
