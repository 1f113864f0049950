"""The demo's simulated AI service, instrumented exactly as a user would instrument theirs.

Two endpoints, each deployed as a serverless (AWS Lambda) and a container (Kubernetes)
variant: ``/v1/chat`` (RAG: embed the query → vector search → rerank → streaming LLM call)
and ``/v1/ingest`` (an embedding pipeline fed by webhooks: chunk → embed → upsert). Only
the public API is used: ``observe`` / ``annotate`` / ``configure`` from ``infermeter`` and,
for the simulated clock, ``infermeter.agent.testing`` (``virtual_time`` / ``advance``), so
two weeks of traffic replay in about a minute through the real decorator, the real OTLP
exporter and the real collector.

One deployment runs per process, started by ``infermeter demo`` with the environment its
platform would set (``AWS_LAMBDA_FUNCTION_NAME`` …, ``KUBERNETES_SERVICE_HOST``), so runtime
detection is the real one. A serverless deployment simulates many sandboxes in one
process: the load generator tracks which simulated sandbox serves each request and tells
the decorator through ``annotate(cold_start=...)`` — what a platform integration that knows
better would do, since "first invocation in this process" only holds for real sandboxes.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

import numpy as np

from infermeter import annotate, configure, evaluate, feedback, observe
from infermeter.agent import current_span, force_flush, shutdown
from infermeter.agent.testing import advance, virtual_time

__all__ = ["DEPLOYMENTS", "SELF_HOSTED_MODEL", "DemoDeployment", "Scenario", "run_deployment"]

CHAT: Final = "/v1/chat"
INGEST: Final = "/v1/ingest"
EMBED: Final = "/v1/embed"
# The embedding model the team serves itself on one NVIDIA L4.
SELF_HOSTED_MODEL: Final = "bge-small-en-v1.5"
# What that GPU does with it (tokens per second while busy) and how long the model loads.
_GPU_TOKENS_PER_S: Final = 24_000.0
EMBEDDING_DIMS: Final = 256
Vector = np.ndarray[tuple[int], np.dtype[np.float64]]
_TOPICS: Final = 12
# Quality: an online judge grades a sample of answers (a span event on the request), users
# give thumbs up/down on a few later (an OTLP log record from outside the call). v2 answers
# slightly worse for one tenant only — what the rollback advice should catch.
_JUDGED_SHARE: Final = 0.2
_FEEDBACK_SHARE: Final = 0.05
_HELPFULNESS: Final = {"v1": 0.82, "v2": 0.82}
_WORSE_TENANT: Final = "acme"
_WORSE_V2: Final = 0.76
_QUESTIONS: Final = 40  # recurring questions, for top-k overlap across prompt versions
_INDEX_VERSION: Final = "kb-2026-11"


@dataclass(frozen=True)
class Scenario:
    """The simulated timeline shared by every deployment (Unix seconds)."""

    start: float
    end: float
    rollout: float  # prompt "rag-answer" v1 → v2 (longer prompt, more context, rewritten queries)
    growth: float  # acme onboards more users: its chat traffic more than doubles
    seed: int = 7

    @classmethod
    def ending(cls, end: datetime, *, days: float = 14.0, seed: int = 7) -> Scenario:
        end_s = end.timestamp()
        return cls(
            start=end_s - days * 86400.0,
            end=end_s,
            rollout=end_s - 4 * 86400.0,
            growth=end_s - 7 * 86400.0,
            seed=seed,
        )


@dataclass(frozen=True)
class TenantTraffic:
    tenant: str
    # Mean arrivals per second before and after the growth date.
    rate: float
    rate_after_growth: float | None = None
    diurnal: float = 0.5  # amplitude of the day/night swing (0 = flat)
    # Bursts: mean seconds between bursts, requests per burst, seconds a burst lasts.
    burst_every_s: float | None = None
    burst_size: int = 0
    burst_span_s: float = 0.0
    # Nightly batch: requests per night between 01:00 and 03:00 UTC.
    nightly: int = 0


@dataclass(frozen=True)
class DemoDeployment:
    key: str
    service: str
    endpoint: str
    runtime: str  # what the platform env makes the decorator detect
    env: dict[str, str]
    tenants: tuple[TenantTraffic, ...]
    keep_alive_s: float = 0.0  # serverless: idle time before a sandbox is reclaimed
    init_s: tuple[float, float] = (0.0, 0.0)  # serverless: lazy model/index load when cold
    runtime_init_s: tuple[float, float] = (0.25, 0.6)  # the platform's own INIT
    model_load_s: float = 0.0  # a GPU model server: loading the weights on its first call


_LAMBDA_ENV: Final = {"AWS_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
_K8S_ENV: Final = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}

DEPLOYMENTS: Final[tuple[DemoDeployment, ...]] = (
    # Steady enterprise traffic on Lambda that doubles in the second week: past break-even.
    DemoDeployment(
        key="chat-lambda",
        service="rag-chat",
        endpoint=CHAT,
        runtime="serverless",
        env={
            **_LAMBDA_ENV,
            "AWS_LAMBDA_FUNCTION_NAME": "rag-chat",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
        },
        tenants=(
            TenantTraffic("acme", rate=0.01, rate_after_growth=0.026),
            TenantTraffic("initech", rate=0.002),
            # A partner whose batch jobs burst past the provider's tokens-per-minute limit.
            TenantTraffic(
                "globex", rate=0.003, burst_every_s=8 * 3600.0, burst_size=80, burst_span_s=600.0
            ),
        ),
        keep_alive_s=20 * 60.0,
        init_s=(1.2, 2.4),
    ),
    # The same chat service as a Kubernetes pod, for a tenant that asked for it.
    DemoDeployment(
        key="chat-k8s",
        service="rag-chat",
        endpoint=CHAT,
        runtime="container",
        env={**_K8S_ENV, "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=rag-chat-7d9f-x2k4"},
        tenants=(TenantTraffic("umbrella", rate=0.012),),
    ),
    # Webhook-driven ingestion on Lambda: idle for hours, then a burst → cold sandboxes.
    DemoDeployment(
        key="ingest-lambda",
        service="doc-ingest",
        endpoint=INGEST,
        runtime="serverless",
        env={
            **_LAMBDA_ENV,
            "AWS_LAMBDA_FUNCTION_NAME": "doc-ingest",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        },
        tenants=(
            TenantTraffic(
                "hookly", rate=0.0, burst_every_s=2.5 * 3600.0, burst_size=30, burst_span_s=8.0
            ),
        ),
        keep_alive_s=15 * 60.0,
        init_s=(1.6, 3.0),
    ),
    # A nightly batch on an always-on pod that idles the rest of the day.
    DemoDeployment(
        key="ingest-k8s",
        service="doc-ingest",
        endpoint=INGEST,
        runtime="container",
        env={**_K8S_ENV, "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=doc-ingest-5c8b-q7mz"},
        tenants=(TenantTraffic("acme", rate=0.0, nightly=150),),
    ),
    # A self-hosted embedding model on one always-on L4 pod, used only by a nightly
    # re-embedding batch: the GPU idles 22 hours a day and the API would cost cents.
    DemoDeployment(
        key="embed-gpu",
        service="embedder",
        endpoint=EMBED,
        runtime="container",
        env={
            **_K8S_ENV,
            "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=embedder-6f4d-l4x1",
            "INFERMETER_GPU_TYPE": "nvidia-l4",
            "NVIDIA_VISIBLE_DEVICES": "0",
        },
        tenants=(TenantTraffic("acme", rate=0.0, nightly=150),),
        model_load_s=38.0,
    ),
)


# --- the "provider" the service calls (stands in for the OpenAI API) ---------------------


class RateLimitError(Exception):
    """Shaped like the OpenAI SDK's error: HTTP 429 with a retry-after header."""

    status_code = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("Rate limit reached for gpt-4o-mini (tokens per min)")
        self.response = SimpleNamespace(
            status_code=429, headers={"retry-after": f"{retry_after:.0f}"}
        )


@dataclass
class Request:
    tenant: str
    arrival: float
    prompt_version: str
    cold: bool | None = None  # None: let the decorator detect it (real processes)
    sandbox_init_s: float = 0.0
    runtime_init_s: float = 0.0
    docs: int = 0
    throttle_p: float = 0.0


class World:
    """The simulated outside world: topic mix of questions, provider latency and limits."""

    def __init__(self, topics_seed: int, noise_seed: int) -> None:
        # The topics people ask about are one world shared by every deployment and replay
        # process; only the sampling noise differs between processes.
        topics = np.random.default_rng(topics_seed)
        centroids = topics.normal(size=(_TOPICS, EMBEDDING_DIMS))
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        # v2 rewrites questions before embedding them (HyDE-style): the queries move to
        # other topics and gain a common direction — what drift detection should catch.
        self.rewrite_direction = topics.normal(size=EMBEDDING_DIMS)
        self.rewrite_direction /= np.linalg.norm(self.rewrite_direction)
        self.rng = random.Random(noise_seed)
        self.np = np.random.default_rng(noise_seed)
        self.v1_mix = np.array([5, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1], dtype=float)
        self.v1_mix /= self.v1_mix.sum()
        self.v1_cumulative = np.cumsum(self.v1_mix)
        self.v2_cumulative = np.cumsum(self.v1_mix[::-1])

    def embedding(self, kind: str, prompt_version: str) -> Vector:
        rewritten = kind == "query" and prompt_version == "v2"
        mix = self.v2_cumulative if rewritten else self.v1_cumulative
        topic = min(int(np.searchsorted(mix, self.rng.random())), _TOPICS - 1)
        vector: Vector = self.centroids[topic] + self.np.normal(
            scale=0.9 / math.sqrt(EMBEDDING_DIMS), size=EMBEDDING_DIMS
        )
        if rewritten:
            vector = vector + 0.35 * self.rewrite_direction
        unit: Vector = vector / np.linalg.norm(vector)
        return unit


# --- the service: what a user writes ------------------------------------------------------


def embed_texts(texts: list[str], *, kind: str, world: World, prompt_version: str) -> Any:
    """Call the embeddings API (an OpenAI-shaped response) from inside an observed call."""
    advance(world.rng.uniform(0.04, 0.11) + 0.002 * len(texts))
    tokens = sum(max(1, len(t) // 4) for t in texts)
    data = [
        SimpleNamespace(index=i, embedding=world.embedding(kind, prompt_version))
        for i in range(len(texts))
    ]
    response = SimpleNamespace(
        model="text-embedding-3-small",
        data=data,
        usage=SimpleNamespace(prompt_tokens=tokens, total_tokens=tokens),
    )
    # Say what the vectors embed (questions or documents) so drift compares like with like,
    # and count the tokens on the observed call that made the request.
    annotate(embeddings=(response, kind), input_tokens=tokens)
    return response


@observe(operation="embeddings", provider="openai", model="text-embedding-3-small")
def embed(texts: list[str], *, kind: str, world: World, prompt_version: str) -> Any:
    return embed_texts(texts, kind=kind, world=world, prompt_version=prompt_version)


@observe(name="retrieve", operation="retrieval", provider="openai", model="text-embedding-3-small")
def retrieve(question: str, *, top_k: int, world: World, prompt_version: str) -> list[float]:
    """Embed the question (tokens billed on this span) and search the vector index."""
    embed_texts([question], kind="query", world=world, prompt_version=prompt_version)
    advance(world.rng.uniform(0.025, 0.07))  # the nearest-neighbour search itself
    best = min(0.97, max(0.2, world.rng.gauss(0.78, 0.07)))
    scores = sorted(
        (best - 0.03 * i - world.rng.random() * 0.02 for i in range(top_k)), reverse=True
    )
    annotate(attributes={"retrieval.top_score": round(scores[0], 4), "retrieval.documents": top_k})
    # Which documents came back, and which the answer cited: one of the top four, most of
    # the time. v2's rewritten query keeps half of v1's top documents for the same question.
    asked = world.rng.randrange(_QUESTIONS)
    ids = [f"doc-{asked}-{i}" for i in range(top_k)]
    if prompt_version == "v2":
        ids = [*ids[: top_k // 4], *(f"doc-{asked}-r{i}" for i in range(top_k - top_k // 4))]
    used = [ids[world.rng.randrange(4)]] if world.rng.random() < 0.85 else []
    annotate(
        retrieved_ids=ids,
        used_ids=used,
        retrieval_scores=[round(x, 4) for x in scores],
        query_fingerprint=f"q{asked}",
        index_version=_INDEX_VERSION,
    )
    return scores


@observe(name="rerank", operation="rerank", model="bge-reranker-base")
def rerank(scores: list[float], *, keep: int, world: World) -> list[float]:
    advance(world.rng.uniform(0.06, 0.11) + 0.012 * len(scores))
    return scores[:keep]


@observe(operation="chat", provider="openai", model="gpt-4o-mini")
def complete(prompt_tokens: int, *, world: World, throttle_p: float) -> Iterator[Any]:
    """A streaming chat completion; the last chunk carries usage, as OpenAI's does with
    ``stream_options={"include_usage": True}``."""
    if world.rng.random() < throttle_p:
        advance(world.rng.uniform(0.05, 0.15))
        raise RateLimitError(retry_after=world.rng.choice((1.0, 2.0, 2.0, 3.0, 5.0)))
    advance(world.rng.uniform(0.3, 0.75) + prompt_tokens / 40_000)
    output_tokens = max(60, int(world.rng.gauss(480, 120)))
    # Real streams send a chunk every few tokens; a handful keeps the replay fast while the
    # time to first chunk and the usage-carrying last chunk stay as they are.
    chunks = 6
    per_chunk = output_tokens / chunks / world.rng.uniform(85.0, 125.0)
    for _ in range(chunks - 1):
        yield SimpleNamespace(
            choices=[SimpleNamespace(delta=SimpleNamespace(content="…"))], usage=None
        )
        advance(per_chunk)
    cached = int(prompt_tokens * world.rng.uniform(0.2, 0.45))
    yield SimpleNamespace(
        model="gpt-4o-mini-2024-07-18",
        choices=[],
        usage=SimpleNamespace(
            prompt_tokens=prompt_tokens,
            completion_tokens=output_tokens,
            prompt_tokens_details=SimpleNamespace(cached_tokens=cached),
        ),
    )


def _tenant(request: Request, *_: object) -> str:
    return request.tenant


def _prompt_version(request: Request, *_: object) -> str:
    return request.prompt_version


def _cold_start(request: Request) -> None:
    """Lazy initialisation on a new simulated sandbox: load the reranker and the index."""
    if request.cold is None:
        return
    annotate(cold_start=request.cold)
    if request.cold:
        annotate(init_duration=request.runtime_init_s)
        advance(request.sandbox_init_s)


@observe(
    name="POST /v1/chat",
    endpoint=CHAT,
    tenant=_tenant,
    prompt_name="rag-answer",
    prompt_version=_prompt_version,
)
def chat(request: Request, world: World, traces: list[str]) -> str:
    _cold_start(request)
    traces.append(format(current_span().get_span_context().trace_id, "032x"))
    v2 = request.prompt_version == "v2"
    question = "How do I rotate the API keys of a workspace?"
    scores = retrieve(
        question, top_k=24 if v2 else 12, world=world, prompt_version=request.prompt_version
    )
    context = rerank(scores, keep=8 if v2 else 4, world=world)
    system_tokens = 950 if v2 else 420
    prompt_tokens = system_tokens + len(context) * int(world.rng.gauss(260, 40)) + 30
    for _attempt in range(4):
        try:
            answer = "".join(
                "…" for _ in complete(prompt_tokens, world=world, throttle_p=request.throttle_p)
            )
        except RateLimitError as exc:
            # Honour the provider's Retry-After before trying again, as the SDKs do.
            advance(float(exc.response.headers["retry-after"]))
            continue
        _judge(request, world)
        return answer
    return "Sorry, the assistant is busy right now."


def _judge(request: Request, world: World) -> None:
    """The online judge: grade a sample of answers, inside the call (a span event)."""
    if world.rng.random() >= _JUDGED_SHARE:
        return
    mean = _HELPFULNESS[request.prompt_version]
    if request.prompt_version == "v2" and request.tenant == _WORSE_TENANT:
        mean = _WORSE_V2
    score = min(1.0, max(0.0, world.rng.gauss(mean, 0.1)))
    evaluate("helpfulness", score, "pass" if score >= 0.5 else "fail")


def _give_feedback(trace_id: str, request: Request, world: World) -> None:
    """A user's thumbs up/down, sent later from outside the call (an OTLP log record
    linked by trace id) — as a web tier would after the answer was shown."""
    if world.rng.random() >= _FEEDBACK_SHARE:
        return
    worse = request.prompt_version == "v2" and request.tenant == _WORSE_TENANT
    thumbs_down = world.rng.random() < (0.3 if worse else 0.15)
    feedback(trace_id, score=-1 if thumbs_down else 1)


@observe(name="POST /v1/ingest", endpoint=INGEST, tenant=_tenant)
def ingest(request: Request, world: World, traces: list[str]) -> int:
    _cold_start(request)
    chunks = [f"chunk {i}" * 40 for i in range(request.docs)]
    advance(world.rng.uniform(0.02, 0.06))  # parse + split
    embed(chunks, kind="document", world=world, prompt_version="v1")
    advance(world.rng.uniform(0.03, 0.08) + 0.004 * len(chunks))  # upsert into the index
    return len(chunks)


@observe(
    name="POST /v1/embed",
    endpoint=EMBED,
    operation="embeddings",
    provider="self_hosted",
    model=SELF_HOSTED_MODEL,
    tenant=_tenant,
)
def embed_server(request: Request, world: World, traces: list[str]) -> int:
    """The model server's own handler: batch queue, then the GPU."""
    _cold_start(request)
    tokens = request.docs * 512
    queue_s = world.rng.uniform(0.002, 0.012)
    model_s = tokens / _GPU_TOKENS_PER_S * world.rng.uniform(0.9, 1.1)
    advance(queue_s + model_s)
    annotate(queue_time=queue_s, model_time=model_s, input_tokens=tokens)
    return request.docs


# --- the load generator -------------------------------------------------------------------


def _arrivals(
    traffic: TenantTraffic, scenario: Scenario, rng: random.Random
) -> tuple[list[float], list[float]]:
    """Arrival times of one tenant's requests, and the start times of its bursts."""
    times: list[float] = []
    bursts: list[float] = []
    peak = max(traffic.rate, traffic.rate_after_growth or 0.0) * (1 + traffic.diurnal)
    if peak > 0:
        # Thinning: a Poisson process at the peak rate, kept with probability rate(t)/peak.
        t = scenario.start
        while True:
            t += rng.expovariate(peak)
            if t >= scenario.end:
                break
            base = traffic.rate
            if traffic.rate_after_growth is not None and t >= scenario.growth:
                base = traffic.rate_after_growth
            hour = (t % 86400.0) / 3600.0
            swing = 1 + traffic.diurnal * math.sin((hour - 9.0) / 24.0 * 2 * math.pi)
            if rng.random() < base * swing / peak:
                times.append(t)
    if traffic.burst_every_s:
        t = scenario.start
        while True:
            t += rng.expovariate(1.0 / traffic.burst_every_s)
            if t >= scenario.end:
                break
            bursts.append(t)
            times.extend(
                t + rng.uniform(0, traffic.burst_span_s) for _ in range(traffic.burst_size)
            )
    if traffic.nightly:
        day = datetime.fromtimestamp(scenario.start, UTC).replace(hour=1, minute=0, second=0)
        while day.timestamp() < scenario.end:
            night = day.timestamp()
            times.extend(
                t
                for t in (night + rng.uniform(0, 7200) for _ in range(traffic.nightly))
                if scenario.start <= t < scenario.end
            )
            day += timedelta(days=1)
    return [t for t in times if scenario.start <= t < scenario.end], bursts


class _Sandboxes:
    """Serverless execution environments: one request at a time each, reclaimed when idle."""

    def __init__(self, keep_alive_s: float, rng: random.Random) -> None:
        self.keep_alive_s = keep_alive_s
        self.rng = rng
        self.free_at: list[float] = []  # per live sandbox: when it finishes its request

    def acquire(self, t: float) -> tuple[int, bool]:
        # Reclaim sandboxes idle for longer than their (jittered) keep-alive.
        self.free_at = [
            f
            for f in self.free_at
            if not (f <= t and t - f > self.keep_alive_s * self.rng.uniform(0.6, 1.4))
        ]
        idle = [i for i, f in enumerate(self.free_at) if f <= t]
        if idle:
            slot = max(idle, key=lambda i: self.free_at[i])  # the warmest one
            return slot, False
        self.free_at.append(t)
        return len(self.free_at) - 1, True

    def release(self, slot: int, t: float) -> None:
        self.free_at[slot] = t


# Requests between flushes: ~5 spans each stays under the span processor's 2,048 queue.
_FLUSH_EVERY: Final = 300

# The provider's tokens-per-minute limit bites while a burst piles up, and barely otherwise.
_THROTTLE_IN_BURST: Final = 0.45
_THROTTLE_BASELINE: Final = 0.004
_BURST_PRESSURE_S: Final = 900.0


def _requests(deployment: DemoDeployment, scenario: Scenario, rng: random.Random) -> list[Request]:
    requests: list[Request] = []
    for traffic in deployment.tenants:
        times, bursts = _arrivals(traffic, scenario, rng)
        for t in times:
            in_burst = any(b <= t <= b + _BURST_PRESSURE_S for b in bursts)
            requests.append(
                Request(
                    tenant=traffic.tenant,
                    arrival=t,
                    prompt_version="v2" if t >= scenario.rollout else "v1",
                    docs=rng.randint(3, 14) if deployment.endpoint in {INGEST, EMBED} else 0,
                    throttle_p=(
                        _THROTTLE_IN_BURST
                        if in_burst and deployment.endpoint == CHAT
                        else _THROTTLE_BASELINE
                    ),
                )
            )
    requests.sort(key=lambda r: r.arrival)
    return requests


def run_deployment(
    deployment: DemoDeployment,
    scenario: Scenario,
    *,
    part: int = 0,
    parts: int = 1,
    flush: Callable[[], object] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replay the deployment's traffic through the decorated service; returns requests.

    ``part``/``parts`` split the timeline into consecutive slices so that several processes
    can replay one deployment (each slice starts with no warm sandbox: a few extra cold
    starts at the seams, a negligible share). ``flush`` runs every few hundred requests:
    replayed traffic arrives faster than any real service's, and waiting for the exporter
    there keeps the span queue from overflowing (dropped spans) without unbounded memory.
    ``progress(done, total)`` is called at the same rhythm.
    """
    rng = random.Random(f"{scenario.seed}-{deployment.key}")
    requests = _requests(deployment, scenario, rng)
    span_s = (scenario.end - scenario.start) / parts
    low, high = scenario.start + part * span_s, scenario.start + (part + 1) * span_s
    requests = [r for r in requests if low <= r.arrival < high]
    world = World(scenario.seed, scenario.seed + sum(map(ord, deployment.key)) + 1000 * part)
    sandboxes = _Sandboxes(deployment.keep_alive_s, rng)
    handlers = {CHAT: chat, INGEST: ingest, EMBED: embed_server}
    handler = handlers[deployment.endpoint]
    serverless = deployment.runtime == "serverless"
    total = len(requests)
    if progress is not None:
        progress(0, total)
    for done, request in enumerate(requests, start=1):
        slot = 0
        if serverless:
            slot, request.cold = sandboxes.acquire(request.arrival)
            if request.cold:
                request.sandbox_init_s = rng.uniform(*deployment.init_s)
                request.runtime_init_s = rng.uniform(*deployment.runtime_init_s)
        elif deployment.model_load_s and done == 1:
            # The pod's first call waited for the weights: its INIT is the model load.
            request.cold, request.runtime_init_s = True, deployment.model_load_s
        traces: list[str] = []
        with virtual_time(request.arrival) as clock:
            handler(request, world, traces)
            finished = clock.seconds
        if traces:
            _give_feedback(traces[0], request, world)
        if serverless:
            sandboxes.release(slot, finished)
        if done % _FLUSH_EVERY == 0 or done == total:
            if flush is not None:
                flush()
            if progress is not None:
                progress(done, total)
    return total


def _progress_file(path: Path) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps({"done": done, "total": total}), encoding="utf-8")
        scratch.replace(path)

    return report


def main() -> int:
    """One replay process: ``python -m infermeter._demo_service KEY END_ISO PART PARTS
    PROGRESS_FILE``, with the collector's address in ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
    the platform's variables in the environment."""
    key, end_iso, part, parts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    progress = _progress_file(Path(sys.argv[5]))
    deployment = next(d for d in DEPLOYMENTS if d.key == key)
    scenario = Scenario.ending(datetime.fromisoformat(end_iso))
    # A replay is not a real Lambda: flushing after every simulated invocation would make
    # one HTTP request per request, so batches go out as in a long-running process.
    configure(service_name=deployment.service, capture_embeddings=0.1, flush_on_return=False)
    try:
        run_deployment(
            deployment, scenario, part=part, parts=parts, flush=force_flush, progress=progress
        )
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
