"""Read run records (``metrics.json``) and split them into usable and excluded runs.

A record is usable when it completed its planned steps, names a registered task and a variant,
and holds ``test_acc`` as a fraction in ``[0, 1]``; only runs of the requested protocols enter
the tables, and a repeated (row, task, seed) keeps the latest ``finished_at``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from experiments.portable import portable_path
from experiments.protocol import current_protocol
from experiments.run_record import RunRecord


@functools.cache
def tasks() -> tuple[str, ...]:
    """Table columns: every registered task, in registry order (:mod:`experiments.data.registry`).

    Imported on first use, since filling the registry imports every data module.
    """
    from experiments.data.registry import names

    return names()


def tasks5() -> tuple[str, ...]:
    """The five tasks of LRA's 5-task average (the first five in registry order)."""
    return tasks()[:5]


def shown_path(path: Path) -> str:
    """A record's path as tables show it: relative to the repository, never absolute."""
    return portable_path(path)


DEFAULT_RUN_DIRS: tuple[str, ...] = ("runs", "outputs", "multirun", "results/runs")


REQUIRED_FIELDS: tuple[str, ...] = ("status", "task", "test_acc")


def find_metric_files(run_dirs: list[Path]) -> list[Path]:
    """Every ``metrics.json`` below the existing run folders, sorted, without duplicates."""
    found: set[Path] = set()
    for root in run_dirs:
        if root.is_dir():
            found.update(p.resolve() for p in root.rglob("metrics.json") if p.is_file())
    return sorted(found)


def _check(data: dict[str, Any]) -> str | None:
    """Why a record cannot be averaged in, or None when it can."""
    missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
    if data.get("status") not in (None, "completed"):
        reason = data.get("failure_reason") or "no failure_reason recorded"
        return f"status={data.get('status')}: {reason}"
    planned = ((data.get("config") or {}).get("trainer") or {}).get("max_steps")
    steps = data.get("steps")
    if isinstance(planned, int) and planned > 0 and isinstance(steps, int) and steps < planned:
        return f"stopped at step {steps} of trainer.max_steps={planned} (recorded as completed)"
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if not (data.get("variant") or data.get("attention") or data.get("model")):
        return "missing field(s): variant (and attention/model)"
    acc = data["test_acc"]
    if not isinstance(acc, int | float) or isinstance(acc, bool) or not 0.0 <= acc <= 1.0:
        return f"test_acc={acc!r} is not a fraction in [0, 1]"
    if data["task"] not in tasks():
        return f"unknown task {data['task']!r}; expected one of {', '.join(tasks())}"
    return None


def record_protocol(data: dict[str, Any]) -> tuple[str, str]:
    """``(protocol, why)`` under the presets as they are now (:func:`current_protocol`)."""
    return current_protocol(data)


def load_record(path: Path) -> RunRecord:
    """Read one ``metrics.json`` (read-only); malformed files become records with a problem."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return RunRecord.from_data(path, {}, f"unreadable: {err}")
    if not isinstance(data, dict):
        return RunRecord.from_data(path, {}, "unreadable: top level is not a JSON object")
    return RunRecord.from_data(path, data, _check(data))


def campaign_sharing(rec: RunRecord) -> list[int]:
    """Runs on the GPU of each segment of ``rec``'s run, as ``scripts/campaign.py`` saw them.

    Read from ``campaign.json`` beside the record: a segment's ``runs_on_gpu`` (the most runs
    of the campaign's command on that GPU at once while the segment ran), or its planned
    ``per_gpu`` where it has none (segments recorded before that field). Empty for a run the
    campaign did not start. Runs started beside it by other commands are not counted.
    """
    try:
        side = json.loads((rec.path.parent / "campaign.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    segments = side.get("segments") if isinstance(side, dict) else None
    if not isinstance(segments, list):
        return []
    shares = [
        seg.get("runs_on_gpu", seg.get("per_gpu")) for seg in segments if isinstance(seg, dict)
    ]
    return [k for k in shares if isinstance(k, int) and k > 0]


def table_label(rec: RunRecord) -> str:
    """The row name: the variant, with ``[custom]``/``[debug]`` for runs off the protocol."""
    protocol = record_protocol(rec.data)[0]
    return rec.variant if protocol == "lra" else f"{rec.variant} [{protocol}]"


def split_records(
    records: list[RunRecord], protocols: tuple[str, ...] = ("lra",)
) -> tuple[list[RunRecord], list[RunRecord]]:
    """Split into usable runs and excluded ones.

    Only runs of the given ``protocols`` are usable; the others are excluded with their kind
    and why. Runs of different kinds never share a row (non-``lra`` rows are labelled, see
    :func:`table_label`), so one never replaces another. A repeated (row, task, seed) keeps
    the latest ``finished_at``; the others are excluded as duplicates (archived copies).
    """
    usable: dict[tuple[str, str, str], RunRecord] = {}
    excluded = [r for r in records if r.problem is not None]
    for rec in (r for r in records if r.problem is None):
        protocol, why = record_protocol(rec.data)
        if protocol not in protocols:
            rec.problem = (
                f"protocol={protocol} ({why}); the tables take {', '.join(protocols)} runs "
                f"(add --protocols {protocol} to include it)"
            )
            excluded.append(rec)
            continue
        key = (table_label(rec), rec.task, repr(rec.seed))
        old = usable.get(key)
        if old is None:
            usable[key] = rec
            continue
        newer, older = sorted(
            (rec, old), key=lambda r: str(r.data.get("finished_at") or ""), reverse=True
        )
        older.problem = f"duplicate of {shown_path(newer.path)} (same kind, variant, task and seed)"
        usable[key] = newer
        excluded.append(older)
    return list(usable.values()), excluded
