"""spectrans: spectral and efficient attention layers for PyTorch.

The library half of spectrans-lra. It depends on torch, numpy and pydantic only: no lightning
and no hydra imports live under this package (a test enforces it).
"""

__version__ = "0.1.0"
