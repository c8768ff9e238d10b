"""Pydantic v2 configs of the six LRA tasks; their union on ``name`` comes from the registry.

Every choice where LRA sources disagree (see ``docs/lra_protocol.md``) is a field, never a
hidden constant: ListOps length 2000 (LRA) vs 2048 (S4), text length 1000 (LRA code) vs 4000
(paper), Pathfinder resolution and difficulty, pixels as tokens vs normalised values. Paths are
relative to the ``data_dir`` given to :func:`experiments.data.build_datamodule` unless absolute.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Union

from pydantic import Field, PositiveInt, TypeAdapter, model_validator

from spectrans.config.core import StrictModel

PadTo = Literal["max_length", "longest"]
PixelEncoding = Literal["tokens", "normalized"]
Difficulty = Literal["curv_baseline", "curv_contour_length_9", "curv_contour_length_14"]
GenerateSize = Literal["full", "small", "tiny"]
MaskMode = Literal["lengths", "lra_nonzero"]
"""``lengths``: ``mask[b, t] = t < length[b]`` (correct: a black pixel is a real token);
``lra_nonzero``: additionally mask every token 0, as LRA's ``inputs > 0`` (on pixel tasks this
masks every black pixel)."""


class ListOpsGenerateConfig(StrictModel):
    """Generate ListOps when its files are missing (in ``prepare_data``).

    Attributes:
        size: ``full`` (96k/2k/2k), ``small`` (2000/200/200) or ``tiny`` (200/20/20).
        sizes: Explicit (train, val, test) tree counts, overriding ``size``.
        seed: Generator seed (same seed, byte-identical files).
        workers: Worker processes.
        max_depth: Deepest level of a tree (LRA: 10).
        min_tokens: A tree is kept iff ``min_tokens < length < max_tokens`` (LRA: 500, 2000).
        max_tokens: See ``min_tokens``.
    """

    size: GenerateSize = "full"
    sizes: tuple[PositiveInt, PositiveInt, PositiveInt] | None = None
    seed: int = 0
    workers: int = Field(1, ge=1)
    max_depth: int = Field(10, ge=2)
    min_tokens: int = Field(500, ge=0)
    max_tokens: int = Field(2000, gt=4)

    @model_validator(mode="after")
    def _check_lengths(self) -> ListOpsGenerateConfig:
        if self.min_tokens >= self.max_tokens - 1:
            raise ValueError(
                f"task.generate.min_tokens = {self.min_tokens} must be below "
                f"task.generate.max_tokens - 1 = {self.max_tokens - 1}"
            )
        return self


class PathfinderGenerateConfig(StrictModel):
    """Generate Pathfinder images when the folder is missing (in ``prepare_data``).

    Attributes:
        size: ``full`` (200k images), ``small`` (2000) or ``tiny`` (200).
        num_images: Explicit image count, overriding ``size``.
        seed: Generator seed.
        workers: Worker processes.
    """

    size: GenerateSize = "full"
    num_images: int | None = Field(None, gt=0)
    seed: int = 0
    workers: int = Field(1, ge=1)

    def image_count(self) -> int:
        """Number of images to generate."""
        return self.num_images or {"full": 200_000, "small": 2_000, "tiny": 200}[self.size]


class TaskConfigBase(StrictModel):
    """Fields shared by every task.

    Attributes:
        name: Task name, the union discriminator.
        path: Folder of the task's files; relative to ``data_dir`` unless absolute.
        pad_to: Pad every batch to ``max_length`` or to its longest sequence.
        cache: Cache the tokenised splits on disk (``<data_dir>/.cache``).
        mask: Attention/pooling mask, see :data:`MaskMode`.
    """

    name: str
    path: str
    pad_to: PadTo = "max_length"
    cache: bool = True
    mask: MaskMode = "lengths"


class ListOpsTaskConfig(TaskConfigBase):
    """ListOps: ``basic_{train,val,test}.tsv``; 10 classes.

    Attributes:
        max_length: 2000 (LRA) or 2048 (S4); longer sequences are cut.
        generate: Generate the files into ``path`` when they are missing (None: fail).
    """

    name: Literal["listops"] = "listops"
    path: str = "listops-1000"
    max_length: int = Field(2000, gt=0)
    generate: ListOpsGenerateConfig | None = None


class TextTaskConfig(TaskConfigBase):
    """IMDB byte-level classification; 2 classes.

    Attributes:
        max_length: 1000 (LRA code), 4000 (paper) or 4096 (S4); bytes beyond it are cut.
        source: ``auto`` tries ``aclimdb``, then ``parquet``, then ``hf``.
        hf_id: Hugging Face hub id read through ``datasets``.
        validation: ``holdout`` (default) keeps a fixed random ``holdout_fraction`` of train
            (seed 0) for validation, disjoint from test; ``test`` validates on the test split
            as the LRA code does (then a best-on-validation choice selects on test).
        holdout_fraction: Fraction of train held out when ``validation="holdout"``.
    """

    name: Literal["text"] = "text"
    path: str = "imdb"
    max_length: int = Field(1000, gt=0)
    source: Literal["auto", "aclimdb", "parquet", "hf"] = "auto"
    hf_id: str = "stanfordnlp/imdb"
    validation: Literal["test", "holdout"] = "holdout"
    holdout_fraction: float = Field(0.1, gt=0.0, lt=1.0)


class RetrievalTaskConfig(TaskConfigBase):
    """AAN document matching, a pair task; 2 classes.

    Attributes:
        max_length: Bytes kept per document (4000).
        raw_cut_bytes: Raw text is first cut at this many bytes (10000), as the LRA code does.
    """

    name: Literal["retrieval"] = "retrieval"
    path: str = "tsv_data"
    max_length: int = Field(4000, gt=0)
    raw_cut_bytes: int = Field(10000, gt=0)


class ImageTaskConfig(TaskConfigBase):
    """CIFAR-10 as 1024 grayscale pixels; 10 classes.

    Attributes:
        max_length: Sequence length, 32 * 32.
        pixel_encoding: ``tokens`` (ints 0..255, embedded) or ``normalized`` (floats /255).
        source: ``auto`` tries the pickles in ``path``, then ``hf``.
        hf_id: Hugging Face hub id read through ``datasets``.
        val_fraction: The last fraction of train used for validation (0.1: 45k / 5k).
    """

    name: Literal["image"] = "image"
    path: str = "cifar-10-batches-py"
    max_length: Literal[1024] = 1024
    pixel_encoding: PixelEncoding = "tokens"
    source: Literal["auto", "pickle", "hf"] = "auto"
    hf_id: str = "uoft-cs/cifar10"
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)


class PathfinderTaskConfig(TaskConfigBase):
    """Pathfinder: is there a path between the two markers? 2 classes.

    ``path`` defaults to ``pathfinder{resolution}/{difficulty}``.

    Attributes:
        resolution: Image side; the sequence length is ``resolution ** 2``.
        difficulty: Contour length folder (``curv_contour_length_14`` is the reported one).
        pixel_encoding: ``tokens`` (ints 0..255) or ``normalized`` (floats /255).
        split_fractions: Train / val / test fractions of the shuffled images (80/10/10).
        split_seed: Seed of the shuffle that makes the splits.
        generate: Generate the images when the folder is missing (None: fail).
    """

    name: Literal["pathfinder"] = "pathfinder"
    path: str = ""
    resolution: Literal[32, 64, 128, 256] = 32
    difficulty: Difficulty = "curv_contour_length_14"
    pixel_encoding: PixelEncoding = "tokens"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    generate: PathfinderGenerateConfig | None = None

    @model_validator(mode="after")
    def fill_path_and_check_fractions(self) -> PathfinderTaskConfig:
        """Default ``path`` from resolution and difficulty; fractions must sum to 1."""
        if not self.path:
            object.__setattr__(self, "path", f"pathfinder{self.resolution}/{self.difficulty}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6 or min(self.split_fractions) <= 0:
            raise ValueError(
                f"split_fractions={self.split_fractions} must be three positive numbers "
                "summing to 1, e.g. (0.8, 0.1, 0.1)."
            )
        return self

    @property
    def max_length(self) -> int:
        """Sequence length: one token per pixel."""
        return self.resolution * self.resolution


class PathXTaskConfig(PathfinderTaskConfig):
    """Path-X: Pathfinder at 128 x 128 (16384 tokens)."""

    name: Literal["pathx"] = "pathx"  # type: ignore[assignment]
    resolution: Literal[128, 256] = 128  # type: ignore[assignment]


TaskConfig = TaskConfigBase
"""Annotation of any registered task config (the union is built from the task registry)."""


def task_config_union() -> Any:
    """``Annotated[A | B | ..., Field(discriminator="name")]`` over every registered task config."""
    from experiments.data import registry

    return _union(registry.config_classes())


def task_config_adapter() -> TypeAdapter[Any]:
    """The discriminated union (on ``name``) of every registered task config class."""
    from experiments.data import registry

    return _union_adapter(registry.config_classes())


def _union(members: tuple[type[TaskConfigBase], ...]) -> Any:
    return Annotated[Union[members], Field(discriminator="name")]  # noqa: UP007


@functools.cache
def _union_adapter(members: tuple[type[TaskConfigBase], ...]) -> TypeAdapter[Any]:
    return TypeAdapter(_union(members))


def parse_task_config(cfg: Any) -> TaskConfig:
    """Validate a task config given as a dict or an OmegaConf node (a model passes through).

    Raises:
        pydantic.ValidationError: On an unknown task name or key, or a bad value.
    """
    if isinstance(cfg, TaskConfigBase):
        return cfg  # type: ignore[return-value]
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(cfg, resolve=True)
    return task_config_adapter().validate_python(cfg)
