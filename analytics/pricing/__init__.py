"""infermeter.analytics.pricing.

Token and compute prices: the bundled tables (``data/``, with sources and dates),
user overrides, and ``build`` which regenerates the token table from LiteLLM's map.
"""

from __future__ import annotations

from infermeter.analytics.pricing._gpu_prices import (
    GpuInstance,
    GpuPrices,
    ServerlessGpu,
    normalize_gpu_type,
)
from infermeter.analytics.pricing._prices import (
    ENV_PRICES,
    PRICE_SETTINGS,
    ComputePrices,
    FreeTier,
    PriceBook,
    PriceSource,
    TokenPrice,
    load_prices,
    normalize_model_name,
)

__all__ = [
    "ENV_PRICES",
    "PRICE_SETTINGS",
    "ComputePrices",
    "FreeTier",
    "GpuInstance",
    "GpuPrices",
    "PriceBook",
    "PriceSource",
    "ServerlessGpu",
    "TokenPrice",
    "load_prices",
    "normalize_gpu_type",
    "normalize_model_name",
]
