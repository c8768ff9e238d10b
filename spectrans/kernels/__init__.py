"""Random features and kernel functions for linear attention.

Pure functions do the math (testable alone); small modules keep the random projection as a
buffer and redraw it only in training, on an explicit interval.
"""

from spectrans.kernels.favor import (
    PositiveRandomFeatures,
    ReLUFeatures,
    positive_softmax_features,
    relu_features,
)
from spectrans.kernels.functions import (
    KernelFunction,
    LearnableSpectralKernel,
    PolynomialKernel,
    gaussian_kernel,
    polynomial_features,
    polynomial_kernel,
)
from spectrans.kernels.orthogonal import chi_mean, gaussian_projection, orthogonal_block
from spectrans.kernels.rff import (
    FeatureMap,
    GaussianRFF,
    RandomFeatureMap,
    SoftmaxRandomFeatures,
    TrigSoftmaxRFF,
    offset_trig_features,
    softmax_kernel,
    trig_features,
    trig_softmax_features,
)

__all__ = [
    "FeatureMap",
    "GaussianRFF",
    "KernelFunction",
    "LearnableSpectralKernel",
    "PolynomialKernel",
    "PositiveRandomFeatures",
    "RandomFeatureMap",
    "SoftmaxRandomFeatures",
    "ReLUFeatures",
    "TrigSoftmaxRFF",
    "chi_mean",
    "gaussian_kernel",
    "gaussian_projection",
    "offset_trig_features",
    "orthogonal_block",
    "polynomial_features",
    "polynomial_kernel",
    "positive_softmax_features",
    "relu_features",
    "softmax_kernel",
    "trig_features",
    "trig_softmax_features",
]
