"""Prices: LLM token prices and compute list prices, bundled and overridable by a user file.

Costs are never frozen at ingest: analytics price spans at query time from a
:class:`PriceBook`, so loading a new pricing file re-prices all history.

Token prices come from LiteLLM's price map (``data/token_prices.json``, see
``data/NOTICE.md``); compute prices from ``data/compute_prices.toml``, each number with its
source and date. A user file (TOML, or YAML when it ends in ``.yaml``/``.yml``) may
override any of them::

    [tokens."gpt-4o"]             # merges into the bundled entry of that name
    input_per_million = 2.0       # or input_per_token = 2e-6
    output_per_million = 8.0
    cache_read_per_million = 0.5  # also cache_write_*, reasoning_*

    [tokens."acme-llm"]           # a model the bundled map does not know
    input_per_million = 1.0
    output_per_million = 3.0
    provider = "acme"

    [aliases]                     # deployment names (Azure) or gateway names
    "prod-chat" = "gpt-4o"

    [compute]
    lambda_x86_gb_s = 0.0000221   # af-south-1
    vm_hour = { value = 0.12, source = "our EDP contract", date = "2026-12-01" }

Token semantics follow the OpenTelemetry GenAI conventions: ``input_tokens`` includes
cached (read and written) tokens and ``output_tokens`` includes reasoning tokens, so a
call costs ``(input - cache_read - cache_write) * input + cache_read * cache_read_price +
cache_write * cache_write_price + (output - reasoning) * output + reasoning *
reasoning_price``. A missing cache price falls back to the input price and a missing
reasoning price to the output price (what the providers charge when they list none).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from infermeter.agent.settings import (
    ConfigurationError,
    Setting,
    parse_str,
    read_config_file,
    resolve,
)

if TYPE_CHECKING:
    from infermeter.analytics.pricing._gpu_prices import GpuPrices

__all__ = [
    "ENV_PRICES",
    "PRICE_SETTINGS",
    "ComputePrices",
    "FreeTier",
    "PriceBook",
    "PriceSource",
    "TokenPrice",
    "load_prices",
    "model_maker",
    "normalize_model_name",
]

ENV_PRICES: Final = "INFERMETER_PRICES"

PRICE_SETTINGS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        name="prices",
        env=ENV_PRICES,
        default=None,
        parse=parse_str,
        help="pricing file (TOML or YAML) overriding bundled token and compute prices",
    ),
)

_TOKEN_FIELDS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")


@dataclass(frozen=True)
class TokenPrice:
    """USD per token for one model; cache and reasoning prices already fall back as documented."""

    model: str  # the price-map entry that priced the request
    provider: str | None
    mode: str | None
    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float
    source: str
    # How the requested name reached ``model``: exact, alias, normalized, undated, snapshot.
    match: str = "exact"

    def cost(
        self,
        input_tokens: float = 0,
        output_tokens: float = 0,
        cache_read_tokens: float = 0,
        cache_write_tokens: float = 0,
        reasoning_tokens: float = 0,
    ) -> float:
        """USD for one call; token counts follow the OpenTelemetry GenAI conventions."""
        uncached = max(input_tokens - cache_read_tokens - cache_write_tokens, 0)
        visible = max(output_tokens - reasoning_tokens, 0)
        return (
            uncached * self.input
            + cache_read_tokens * self.cache_read
            + cache_write_tokens * self.cache_write
            + visible * self.output
            + reasoning_tokens * self.reasoning
        )


@dataclass(frozen=True)
class PriceSource:
    """Where one compute price comes from."""

    unit: str
    source: str
    date: str | None
    note: str = ""


@dataclass(frozen=True)
class FreeTier:
    """A monthly free allowance (per account or subscription); data, never applied per request."""

    name: str
    requests: float = 0.0
    gb_s: float = 0.0
    vcpu_s: float = 0.0
    gib_s: float = 0.0
    source: str = ""
    date: str | None = None
    note: str = ""


@dataclass(frozen=True)
class ComputePrices:
    """Compute list prices in USD (units in the field comments); provenance in ``sources``."""

    lambda_x86_gb_s: float  # per GB-second of duration (and INIT on cold starts)
    lambda_arm_gb_s: float
    lambda_request: float  # per request
    lambda_pc_x86_gb_s: float  # provisioned concurrency, per configured GB-second
    lambda_pc_duration_x86_gb_s: float  # duration of invocations served by PC
    lambda_pc_arm_gb_s: float
    lambda_pc_duration_arm_gb_s: float
    fargate_x86_vcpu_h: float  # per vCPU-hour
    fargate_x86_gb_h: float  # per GB-hour
    fargate_arm_vcpu_h: float
    fargate_arm_gb_h: float
    cloud_run_request_vcpu_s: float  # request-based billing, per vCPU-second
    cloud_run_request_gib_s: float
    cloud_run_request: float  # per request
    cloud_run_instance_vcpu_s: float  # instance-based billing
    cloud_run_instance_gib_s: float
    cloud_run_idle_vcpu_s: float  # idle min-instance, request-based billing
    cloud_run_idle_gib_s: float
    cloud_run_gpu_l4_s: float  # per GPU-second
    container_apps_active_vcpu_s: float
    container_apps_idle_vcpu_s: float
    container_apps_gib_s: float  # active = idle
    container_apps_request: float
    vm_hour: float  # one general-purpose VM (vm_instance_type), per hour
    gpu_vm_hour: float  # one GPU VM (g5.xlarge), per hour
    vm_instance_type: str = "m7i.large"
    vm_vcpu: float = 2.0
    vm_memory_gib: float = 8.0
    sources: Mapping[str, PriceSource] = field(default_factory=dict)
    free_tiers: Mapping[str, FreeTier] = field(default_factory=dict)

    def lambda_gb_s(self, architecture: str | None = None) -> float:
        """Lambda duration price for an architecture (``arm64`` or anything else = x86)."""
        return self.lambda_arm_gb_s if _is_arm(architecture) else self.lambda_x86_gb_s

    def lambda_pc_gb_s(self, architecture: str | None = None) -> float:
        """Provisioned-concurrency price per configured GB-second."""
        return self.lambda_pc_arm_gb_s if _is_arm(architecture) else self.lambda_pc_x86_gb_s

    def lambda_pc_duration_gb_s(self, architecture: str | None = None) -> float:
        """Duration price of invocations served by provisioned concurrency."""
        if _is_arm(architecture):
            return self.lambda_pc_duration_arm_gb_s
        return self.lambda_pc_duration_x86_gb_s

    def fargate_hour(self, vcpu: float, memory_gb: float, architecture: str | None = None) -> float:
        """One Fargate task of this size, per hour."""
        if _is_arm(architecture):
            return vcpu * self.fargate_arm_vcpu_h + memory_gb * self.fargate_arm_gb_h
        return vcpu * self.fargate_x86_vcpu_h + memory_gb * self.fargate_x86_gb_h


def _is_arm(architecture: str | None) -> bool:
    return (architecture or "").lower() in {"arm64", "arm", "aarch64", "graviton"}


# OpenTelemetry gen_ai.provider.name values → LiteLLM provider prefixes.
_PROVIDER_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "openai": ("openai", "text-completion-openai"),
    "azure.ai.openai": ("azure",),
    "azure.ai.inference": ("azure_ai",),
    "anthropic": ("anthropic",),
    "aws.bedrock": ("bedrock",),
    "gcp.vertex_ai": ("vertex_ai",),
    "gcp.gemini": ("gemini",),
    "gcp.gen_ai": ("gemini", "vertex_ai"),
    "cohere": ("cohere",),
    "mistral_ai": ("mistral",),
    "groq": ("groq",),
    "deepseek": ("deepseek",),
    "perplexity": ("perplexity",),
    "x_ai": ("xai",),
    "ibm.watsonx.ai": ("watsonx",),
}

_REGION_PREFIX: Final = re.compile(r"^(?:us|eu|apac|global|us-gov|jp|au|ca)\.")
_VENDOR_PREFIX: Final = re.compile(
    r"^(?:anthropic|meta|amazon|cohere|mistral|ai21|deepseek|openai|qwen|writer|google)\."
)
_VERSION_SUFFIX: Final = re.compile(r"(?:-v\d+)?:\d+$")
_DATE_SUFFIX: Final = re.compile(r"[-@_](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


def normalize_model_name(name: str) -> str:
    """The comparable form of a model name: lower case, no provider path, no Bedrock
    region/vendor prefix or version suffix (``bedrock/us.anthropic.claude-x-v1:0`` →
    ``claude-x``). Dated snapshots keep their date (see :meth:`PriceBook.token_price`)."""
    text = name.strip().lower().rsplit("/", 1)[-1]
    text = _REGION_PREFIX.sub("", text)
    text = _VENDOR_PREFIX.sub("", text)
    text = _VERSION_SUFFIX.sub("", text)
    return text.replace("@", "-")


def _undated(normalized: str) -> str:
    return _DATE_SUFFIX.sub("", normalized)


# Who makes a model, by its (normalized) name: a name without a provider prices at the
# maker's own list price, not a reseller's copy (azure/mistral-large-latest lists 16x
# mistral's own price). Prefixes, LiteLLM provider names.
_MAKERS: Final = (
    (("gpt-", "chatgpt", "o1", "o3", "o4", "text-embedding-", "davinci", "babbage"), "openai"),
    (("claude",), "anthropic"),
    (("gemini",), "gemini"),
    (
        (
            "mistral",
            "open-mistral",
            "mixtral",
            "open-mixtral",
            "codestral",
            "ministral",
            "pixtral",
            "magistral",
            "devstral",
        ),
        "mistral",
    ),
    (("command", "embed-english", "embed-multilingual", "rerank-"), "cohere"),
    (("deepseek",), "deepseek"),
    (("grok",), "xai"),
)


def model_maker(name: str) -> str | None:
    """The LiteLLM provider that makes ``name`` (``mistral-large-latest`` -> ``mistral``), or
    None when the name does not say."""
    normalized = normalize_model_name(name)
    for prefixes, maker in _MAKERS:
        if normalized.startswith(prefixes):
            return maker
    return None


def _first_party(price: TokenPrice) -> bool:
    provider = (price.provider or "").lower()
    return any(provider.startswith(p) for prefixes in _PROVIDER_ALIASES.values() for p in prefixes)


def _provider_matches(litellm_provider: str | None, provider: str | None) -> bool:
    if not provider or not litellm_provider:
        return False
    wanted = provider.lower()
    prefixes = _PROVIDER_ALIASES.get(wanted, (wanted,))
    return any(litellm_provider.lower().startswith(prefix) for prefix in prefixes)


class PriceBook:
    """Token and compute prices; immutable once built (build a new one to re-price)."""

    def __init__(
        self,
        tokens: Mapping[str, TokenPrice],
        compute: ComputePrices,
        *,
        aliases: Mapping[str, str] | None = None,
        sources: Iterable[str] = (),
        gpu: GpuPrices | None = None,
    ) -> None:
        self._tokens = dict(tokens)
        self.compute = compute
        self._gpu = gpu
        self._aliases = dict(aliases or {})
        self.sources = tuple(sources)
        self._by_normalized: dict[str, list[TokenPrice]] = {}
        self._by_base: dict[str, list[TokenPrice]] = {}
        for price in self._tokens.values():
            normalized = normalize_model_name(price.model)
            self._by_normalized.setdefault(normalized, []).append(price)
            self._by_base.setdefault(_undated(normalized), []).append(price)
        self._lookup = functools.lru_cache(maxsize=4096)(self._resolve)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"PriceBook({len(self._tokens)} token prices, sources={self.sources!r})"

    @property
    def gpu(self) -> GpuPrices:
        """GPU instance and serverless GPU prices (bundled unless the book was given some)."""
        if self._gpu is None:
            from infermeter.analytics.pricing._gpu_prices import gpu_prices

            self._gpu = gpu_prices(self.compute)
        return self._gpu

    @property
    def models(self) -> tuple[str, ...]:
        """Every model name with a token price."""
        return tuple(self._tokens)

    def token_price(self, model: str | None, provider: str | None = None) -> TokenPrice | None:
        """The price of ``model`` (as a span names it), or None when it is unpriced.

        Tried in order: the exact name, a user alias, the normalized name (case, provider
        path ``openai/…``, Bedrock ``us.anthropic.…-v1:0``), the name without its snapshot
        date (``gpt-4o-2024-08-06`` → ``gpt-4o``), then the newest dated snapshot of that
        name. Among equal candidates one whose LiteLLM provider matches ``provider``
        (``gen_ai.provider.name``) wins, then the first-party entry.
        """
        if model is None or not model.strip():
            return None
        return self._lookup(model, provider.lower() if provider else None)

    def _resolve(self, model: str, provider: str | None) -> TokenPrice | None:
        exact = self._tokens.get(model)
        if exact is not None and (provider is None or _provider_matches(exact.provider, provider)):
            return exact
        alias = self._aliases.get(model)
        if alias is not None and alias != model:
            aliased = self._resolve(alias, provider)
            if aliased is not None:
                return dataclasses.replace(aliased, match="alias")
        normalized = normalize_model_name(model)
        # No provider on the span: the model maker's own listing is wanted, a reseller's
        # copy only when the maker lists none.
        maker = model_maker(model)
        wanted = provider or maker
        # A dated snapshot keeps its date: a reseller's listing of that very snapshot beats
        # the maker's newer one (only the pick among equal names prefers the maker).
        dated = _DATE_SUFFIX.search(normalized) is not None and not normalized.endswith("latest")
        accept = provider if dated else wanted
        # The first candidate found is the answer unless a later step finds one from the
        # span's own provider (a gateway's copy of a name must not shadow the vendor's).
        fallback = exact
        for key, index, how in (
            (normalized, self._by_normalized, "normalized"),
            (_undated(normalized), self._by_normalized, "undated"),
            (_undated(normalized), self._by_base, "snapshot"),
        ):
            candidates = index.get(key)
            if not candidates:
                continue
            best = self._best(candidates, wanted, newest=how == "snapshot")
            found = best if best.model == model else dataclasses.replace(best, match=how)
            if accept is None or _provider_matches(best.provider, accept):
                return found
            if fallback is None:
                fallback = found
        return fallback

    def ambiguous(self, model: str | None, provider: str | None = None) -> tuple[str, ...]:
        """Listings a provider-less ``model`` could mean at different prices, when neither
        the span's provider nor the model's maker picks one (empty when unambiguous):
        ``prices check`` flags these so a pricing file can pin the right one."""
        if model is None or provider or model in self._tokens or model in self._aliases:
            return ()
        normalized = normalize_model_name(model)
        for key, index in (
            (normalized, self._by_normalized),
            (_undated(normalized), self._by_normalized),
            (_undated(normalized), self._by_base),
        ):
            candidates = index.get(key)
            if not candidates:
                continue
            maker = model_maker(model)
            if maker and any(_provider_matches(c.provider, maker) for c in candidates):
                return ()
            prices = {(c.input, c.output) for c in candidates}
            return tuple(sorted(c.model for c in candidates)) if len(prices) > 1 else ()
        return ()

    @staticmethod
    def _best(candidates: list[TokenPrice], provider: str | None, *, newest: bool) -> TokenPrice:
        matching = [c for c in candidates if _provider_matches(c.provider, provider)]
        pool = matching or candidates
        if newest:
            return max(pool, key=lambda c: (_first_party(c), c.model.count("/") == 0, c.model))
        # Vendors before gateways and resellers; first-party names carry no provider path
        # and the shorter names are the canonical ones.
        return min(
            pool,
            key=lambda c: (
                not _first_party(c),
                c.model.count("/"),
                "." in c.model,
                len(c.model),
                c.model,
            ),
        )


# --- loading ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _bundled_tokens() -> tuple[dict[str, TokenPrice], str]:
    text = (
        resources.files("infermeter.analytics.pricing")
        .joinpath("data/token_prices.json")
        .read_text(encoding="utf-8")
    )
    table = json.loads(text)
    source = f"litellm {table['litellm_version']} price map, taken {table['taken']}"
    positions = {name: i for i, name in enumerate(table["fields"])}
    tokens: dict[str, TokenPrice] = {}
    for model, row in table["models"].items():
        tokens[model] = _token_price(
            model,
            {name: row[positions[name]] for name in _TOKEN_FIELDS},
            provider=row[positions["provider"]],
            mode=row[positions["mode"]],
            source=source,
        )
    return tokens, source


def _token_price(
    model: str,
    prices: Mapping[str, float | None],
    *,
    provider: str | None,
    mode: str | None,
    source: str,
) -> TokenPrice:
    input_price = prices.get("input") or 0.0
    output_price = prices.get("output") or 0.0
    cache_read = prices.get("cache_read")
    cache_write = prices.get("cache_write")
    reasoning = prices.get("reasoning")
    return TokenPrice(
        model=model,
        provider=provider,
        mode=mode,
        input=float(input_price),
        output=float(output_price),
        cache_read=float(input_price if cache_read is None else cache_read),
        cache_write=float(input_price if cache_write is None else cache_write),
        reasoning=float(output_price if reasoning is None else reasoning),
        source=source,
    )


@functools.lru_cache(maxsize=1)
def _bundled_compute() -> dict[str, Any]:
    text = (
        resources.files("infermeter.analytics.pricing")
        .joinpath("data/compute_prices.toml")
        .read_text(encoding="utf-8")
    )
    return tomllib.loads(text)


def _compute_prices(
    bundled: Mapping[str, Any], overrides: Mapping[str, tuple[float, PriceSource]]
) -> ComputePrices:
    values: dict[str, Any] = {}
    sources: dict[str, PriceSource] = {}
    for name, entry in bundled["prices"].items():
        values[name] = float(entry["value"])
        sources[name] = PriceSource(
            unit=entry["unit"],
            source=entry["source"],
            date=entry.get("date"),
            note=entry.get("note", ""),
        )
    for name, (value, source) in overrides.items():
        values[name] = value
        sources[name] = dataclasses.replace(source, unit=sources[name].unit)
    vm = bundled.get("vm", {})
    free_tiers = {
        name: FreeTier(
            name=name,
            requests=float(tier.get("requests", 0)),
            gb_s=float(tier.get("gb_s", 0)),
            vcpu_s=float(tier.get("vcpu_s", 0)),
            gib_s=float(tier.get("gib_s", 0)),
            source=tier.get("source", ""),
            date=tier.get("date"),
            note=tier.get("note", ""),
        )
        for name, tier in bundled.get("free_tiers", {}).items()
    }
    return ComputePrices(
        **values,
        vm_instance_type=str(vm.get("instance_type", "m7i.large")),
        vm_vcpu=float(vm.get("vcpu", 2)),
        vm_memory_gib=float(vm.get("memory_gib", 8)),
        sources=sources,
        free_tiers=free_tiers,
    )


def _read_user_file(path: Path) -> Mapping[str, Any]:
    data = read_config_file(path, what="pricing file")
    unknown = set(data) - {"tokens", "aliases", "compute", "gpu_instances"}
    if unknown:
        raise ConfigurationError(
            f"pricing file {path}: unknown sections {sorted(unknown)} "
            "(expected tokens, aliases, compute, gpu_instances)"
        )
    return data


def _number(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"pricing file {path}: {where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigurationError(f"pricing file {path}: {where} must be a price >= 0")
    return number


def _user_tokens(
    path: Path, section: object, base: Mapping[str, TokenPrice], source: str
) -> dict[str, TokenPrice]:
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"pricing file {path}: [tokens] must be a table of models")
    merged: dict[str, TokenPrice] = {}
    allowed = {f"{name}_per_{unit}" for name in _TOKEN_FIELDS for unit in ("token", "million")}
    for model, entry in section.items():
        where = f"tokens.{model}"
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"pricing file {path}: [{where}] must be a table")
        unknown = set(entry) - allowed - {"provider", "mode"}
        if unknown:
            raise ConfigurationError(
                f"pricing file {path}: [{where}] unknown keys {sorted(unknown)}; "
                "use input/output/cache_read/cache_write/reasoning with _per_token or _per_million"
            )
        given: dict[str, float] = {}
        for name in _TOKEN_FIELDS:
            per_token = entry.get(f"{name}_per_token")
            per_million = entry.get(f"{name}_per_million")
            if per_token is not None and per_million is not None:
                raise ConfigurationError(
                    f"pricing file {path}: [{where}] gives both {name}_per_token and "
                    f"{name}_per_million"
                )
            if per_token is not None:
                given[name] = _number(path, f"{where}.{name}_per_token", per_token)
            elif per_million is not None:
                given[name] = _number(path, f"{where}.{name}_per_million", per_million) / 1e6
        previous = base.get(str(model))
        if previous is None:
            if "input" not in given and "output" not in given:
                raise ConfigurationError(
                    f"pricing file {path}: [{where}] is a new model and needs at least an "
                    "input or output price"
                )
            merged[str(model)] = _token_price(
                str(model),
                given,
                provider=entry.get("provider"),
                mode=entry.get("mode"),
                source=source,
            )
            continue
        # Unlisted fields keep the bundled price; fallbacks follow a changed input/output.
        current = {
            "input": previous.input,
            "output": previous.output,
            "cache_read": previous.cache_read,
            "cache_write": previous.cache_write,
            "reasoning": previous.reasoning,
        }
        current.update(given)
        merged[str(model)] = dataclasses.replace(
            previous,
            input=current["input"],
            output=current["output"],
            cache_read=current["cache_read"],
            cache_write=current["cache_write"],
            reasoning=current["reasoning"],
            provider=entry.get("provider", previous.provider),
            mode=entry.get("mode", previous.mode),
            source=source,
        )
    return merged


def _user_compute(
    path: Path, section: object, bundled: Mapping[str, Any], default_date: str
) -> dict[str, tuple[float, PriceSource]]:
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"pricing file {path}: [compute] must be a table of prices")
    known = set(bundled["prices"])
    overrides: dict[str, tuple[float, PriceSource]] = {}
    for name, value in section.items():
        if name not in known:
            raise ConfigurationError(
                f"pricing file {path}: unknown compute price {name!r}; known: {sorted(known)}"
            )
        if isinstance(value, Mapping):
            unknown = set(value) - {"value", "source", "date", "note"}
            if unknown or "value" not in value:
                raise ConfigurationError(
                    f"pricing file {path}: compute.{name} takes value, source, date, note"
                )
            number = _number(path, f"compute.{name}", value["value"])
            source = PriceSource(
                unit="",
                source=str(value.get("source", path)),
                date=str(value.get("date", default_date)),
                note=str(value.get("note", "")),
            )
        else:
            number = _number(path, f"compute.{name}", value)
            source = PriceSource(unit="", source=str(path), date=default_date)
        overrides[str(name)] = (number, source)
    return overrides


def load_prices(path: str | Path | None = None) -> PriceBook:
    """The bundled prices, overridden by the pricing file at ``path``.

    ``path`` defaults to the ``INFERMETER_PRICES`` environment variable; without either,
    the bundled prices alone. Raises ``FileNotFoundError`` for a missing file and
    :class:`~infermeter.agent.ConfigurationError` for a malformed one.
    """
    settings = resolve(PRICE_SETTINGS, {"prices": str(path) if path is not None else None})
    bundled_tokens, bundled_source = _bundled_tokens()
    bundled_compute = _bundled_compute()
    sources = [bundled_source, f"compute list prices collected {bundled_compute['collected']}"]
    user_path = settings["prices"]
    if user_path is None:
        return PriceBook(bundled_tokens, _compute_prices(bundled_compute, {}), sources=sources)
    file = Path(user_path)
    data = _read_user_file(file)
    modified = datetime.fromtimestamp(file.stat().st_mtime, tz=UTC).date().isoformat()
    tokens = dict(bundled_tokens)
    tokens.update(_user_tokens(file, data.get("tokens", {}), bundled_tokens, f"{file}"))
    aliases = data.get("aliases", {})
    if not isinstance(aliases, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise ConfigurationError(f"pricing file {file}: [aliases] maps model names to model names")
    compute = _compute_prices(
        bundled_compute, _user_compute(file, data.get("compute", {}), bundled_compute, modified)
    )
    from infermeter.analytics.pricing._gpu_prices import gpu_prices

    gpu = gpu_prices(
        compute, data.get("gpu_instances"), where=f"pricing file {file}", default_date=modified
    )
    return PriceBook(tokens, compute, aliases=aliases, sources=[*sources, str(file)], gpu=gpu)
