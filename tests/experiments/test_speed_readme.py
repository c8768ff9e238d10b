"""The README's speed table: written from a scaling run's csv and provenance, and in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import speed_readme
from experiments.portable import REPO_ROOT

HEADER = "mixer,scope,dtype,device,N,batch,time_ms,peak_mem_bytes,status,repeats,message\n"
PROVENANCE = """## Provenance

- command: `python -m experiments.bench --device cuda --lengths 1024 65536`
- git commit: `0123456789abcdef0123456789abcdef01234567`
- device: NVIDIA H200
- torch: 2.11.0+cu130
- date: 2026-12-02 12:00 UTC
"""


def _run(folder: Path, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scaling.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    (folder / "scaling.md").write_text("# Scaling\n\n" + PROVENANCE)
    return folder


def test_block_has_a_row_per_mixer_with_status_peak_and_ratio(tmp_path: Path) -> None:
    folder = _run(
        tmp_path / "run",
        [
            "softmax,layer,bf16,H200,1024,8,0.25,1048576,ok,10,",
            "softmax,layer,bf16,H200,65536,8,270.0,4044357632,ok,10,",
            "softmax,layer,fp32,H200,65536,8,,,oom,0,out of memory",
            "lst-dct,layer,bf16,H200,1024,8,0.30,2097152,ok,10,",
            "lst-dct,layer,bf16,H200,65536,8,27.0,3145728000,ok,10,",
            "lst-dct,layer,fp32,H200,65536,8,40.0,6291456000,ok,10,",
            "lst-dct,model,bf16,H200,1024,8,9.0,1,ok,10,",
        ],
    )
    block = speed_readme.speed_block(folder)
    lines = block.splitlines()
    assert lines[0] == speed_readme.README_START and lines[-1] == speed_readme.README_END
    assert "commit `0123456`" in block and "2026-12-02 12:00 UTC" in block
    header = next(line for line in lines if line.startswith("| mixer"))
    assert header.split(" | ")[1:3] == ["bf16 @1K", "bf16 @64K"]
    assert "| softmax | 0.2 | 270.0 | oom | 3857 | 1.00 |" in lines
    assert "| lst-dct | 0.3 | 27.0 | 40.0 | 3000 | 0.10 |" in lines
    assert not any("9.0" in line for line in lines)  # model-scope rows are not layer rows


def test_readme_block_is_replaced_and_missing_pieces_are_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _run(tmp_path / "run", ["softmax,layer,bf16,H200,1024,8,0.25,1048576,ok,10,"])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{speed_readme.README_START}\nold\n{speed_readme.README_END}\nend\n")
    argv = ["--scaling", str(folder), "--readme", str(readme)]
    assert speed_readme.main(argv) == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| softmax | 0.2 | — | 1 | 1.00 |" in text

    readme.write_text("no markers\n")
    assert speed_readme.main(argv) == 2
    assert "no '<!-- speed-table:start" in capsys.readouterr().err
    assert readme.read_text() == "no markers\n"

    (folder / "scaling.md").write_text("# Scaling without provenance\n")
    assert speed_readme.main(["--scaling", str(folder)]) == 2
    assert "names no command, git commit, device, date" in capsys.readouterr().err


def test_the_committed_readme_shows_the_committed_scaling_run() -> None:
    """README.md's speed block is what ``make speed-readme`` writes from ``results/``."""
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(speed_readme.README_START)
    end = text.index(speed_readme.README_END) + len(speed_readme.README_END)
    assert text[start:end] == speed_readme.speed_block(REPO_ROOT / "results")
