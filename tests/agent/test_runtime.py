"""Runtime and platform detection, process start, cold starts and Lambda specifics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
from infermeter.agent import annotate, configure, observe, testing
from infermeter.agent._runtime import (
    ColdStart,
    detect_runtime,
    process_age_at_import,
    seconds_since_process_start,
)

CASES: list[tuple[str, dict[str, str], str, dict[str, Any]]] = [
    (
        "aws lambda",
        {
            "AWS_LAMBDA_FUNCTION_NAME": "answer-fn",
            "AWS_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/16/[$LATEST]abc",
        },
        "serverless",
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "cloud.region": "eu-west-1",
            "faas.name": "answer-fn",
            "faas.max_memory": 1024 * 1024 * 1024,
            "faas.version": "$LATEST",
            "faas.instance": "2026/11/16/[$LATEST]abc",
        },
    ),
    (
        "gcp cloud functions (2nd gen also sets K_SERVICE)",
        {
            "FUNCTION_TARGET": "answer",
            "K_SERVICE": "answer-fn",
            "K_REVISION": "answer-fn-7",
        },
        "serverless",
        {
            "cloud.provider": "gcp",
            "cloud.platform": "gcp_cloud_functions",
            "faas.name": "answer-fn",
            "faas.version": "answer-fn-7",
        },
    ),
    (
        "gcp cloud functions 1st gen",
        {
            "FUNCTION_TARGET": "answer",
            "FUNCTION_NAME": "answer-fn",
            "FUNCTION_REGION": "us-central1",
            "FUNCTION_MEMORY_MB": "256",
        },
        "serverless",
        {
            "cloud.provider": "gcp",
            "cloud.platform": "gcp_cloud_functions",
            "cloud.region": "us-central1",
            "faas.name": "answer-fn",
            "faas.max_memory": 256 * 1024 * 1024,
        },
    ),
    (
        "gcp cloud run",
        {"K_SERVICE": "api", "K_REVISION": "api-00042"},
        "serverless_container",
        {
            "cloud.provider": "gcp",
            "cloud.platform": "gcp_cloud_run",
            "faas.name": "api",
            "faas.version": "api-00042",
        },
    ),
    (
        "azure functions",
        {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "WEBSITE_SITE_NAME": "answer-app",
            "REGION_NAME": "West Europe",
        },
        "serverless",
        {
            "cloud.provider": "azure",
            "cloud.platform": "azure.functions",
            "cloud.region": "West Europe",
            "faas.name": "answer-app",
        },
    ),
    (
        "azure container apps",
        {
            "CONTAINER_APP_NAME": "api",
            "CONTAINER_APP_REVISION": "api--r7",
        },
        "serverless_container",
        {
            "cloud.provider": "azure",
            "cloud.platform": "azure.container_apps",
            "faas.name": "api",
            "faas.version": "api--r7",
        },
    ),
    (
        "ecs fargate",
        {
            "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x",
            "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
            "AWS_REGION": "us-east-1",
        },
        "serverless_container",
        {
            "cloud.provider": "aws",
            "cloud.platform": "aws_ecs",
            "cloud.region": "us-east-1",
        },
    ),
    (
        "ecs on ec2",
        {
            "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x",
            "AWS_EXECUTION_ENV": "AWS_ECS_EC2",
        },
        "container",
        {"cloud.provider": "aws", "cloud.platform": "aws_ecs"},
    ),
    ("kubernetes", {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "container", {}),
    ("nothing known", {"HOME": "/root"}, "unknown", {}),
]


@pytest.mark.parametrize(
    ("label", "environ", "runtime", "resource"), CASES, ids=[case[0] for case in CASES]
)
def test_detection(
    label: str, environ: dict[str, str], runtime: str, resource: dict[str, Any]
) -> None:
    info = detect_runtime(environ)
    assert info.runtime == runtime
    assert dict(info.resource) == resource


def test_unparseable_memory_is_left_out() -> None:
    info = detect_runtime(
        {"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}
    )
    assert "faas.max_memory" not in info.resource
    assert info.runtime == "serverless"


def test_detected_runtime_reaches_spans_and_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "api")
    monkeypatch.setenv("K_REVISION", "api-1")

    @observe
    def handler() -> None:
        return None

    with testing.capture(service_name=None) as cap:  # None: the detected name
        handler()
    span = cap.spans[0]
    assert (span.attributes or {})["infermeter.runtime"] == "serverless_container"
    assert span.resource.attributes["cloud.platform"] == "gcp_cloud_run"
    assert span.resource.attributes["service.name"] == "api"
    assert span.resource.attributes["service.instance.id"]


def test_runtime_setting_overrides_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")

    @observe
    def handler() -> None:
        return None

    with testing.capture(runtime="serverless") as cap:
        handler()
    assert (cap.spans[0].attributes or {})["infermeter.runtime"] == "serverless"


def test_process_start_comes_from_proc() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc on this platform")
    age = process_age_at_import()
    assert age is not None
    # The interpreter started before the package was imported, and not in the future.
    assert 0 <= age < time.monotonic() + 1
    assert seconds_since_process_start() >= age


def test_init_duration_of_a_fresh_process_measures_start_to_first_call() -> None:
    """A new interpreter that sleeps 0.3 s in its 'init' reports init_duration >= 0.3."""
    script = (
        "import time\n"
        "from infermeter.agent import observe, testing\n"
        "@observe\n"
        "def handler():\n"
        "    return None\n"
        "time.sleep(0.3)\n"
        "with testing.capture() as cap:\n"
        "    handler(); handler()\n"
        "a = [dict(s.attributes) for s in cap.spans]\n"
        "print(a[0]['faas.coldstart'], a[0]['infermeter.init_duration'], a[1]['faas.coldstart'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out[0] == "True"
    assert 0.3 <= float(out[1]) < 30
    assert out[2] == "False"


@pytest.mark.parametrize(
    ("init_type", "cold", "has_init_duration"),
    [
        (None, True, True),
        ("on-demand", True, True),
        ("provisioned-concurrency", False, False),
        ("snap-start", True, False),
    ],
)
def test_lambda_initialization_types(
    monkeypatch: pytest.MonkeyPatch, init_type: str | None, cold: bool, has_init_duration: bool
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    if init_type is not None:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", init_type)

    @observe
    def handler(event: dict[str, Any], context: object) -> str:
        return "ok"

    with testing.capture(fresh_process=True, flush_on_return=False) as cap:
        handler({}, None)
        handler({}, None)
    first, second = (dict(s.attributes or {}) for s in cap.spans)
    assert first["faas.coldstart"] is cold
    assert ("infermeter.init_duration" in first) is has_init_duration
    assert first.get("infermeter.initialization_type") == init_type
    assert second["faas.coldstart"] is False
    assert "infermeter.initialization_type" not in second
    coldstarts = sum(p.value for p in cap.metric_points("faas.coldstarts"))
    assert coldstarts == (1 if cold else 0)


@pytest.mark.parametrize(
    ("event", "trigger"),
    [
        ({"requestContext": {}, "body": "{}"}, "http"),
        ({"Records": [{"eventSource": "aws:sqs"}]}, "pubsub"),
        ({"Records": [{"EventSource": "aws:sns"}]}, "pubsub"),
        ({"Records": [{"eventSource": "aws:s3"}]}, "datasource"),
        ({"source": "aws.events", "detail-type": "Scheduled Event"}, "timer"),
        ({"anything": 1}, "other"),
    ],
)
def test_lambda_invocation_id_and_trigger(
    monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], trigger: str
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    context = SimpleNamespace(aws_request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef")

    @observe
    def handler(event: dict[str, Any], context: object) -> str:
        return "ok"

    with testing.capture(flush_on_return=False) as cap:
        handler(event, context)
    attributes = dict(cap.spans[0].attributes or {})
    assert attributes["faas.invocation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert attributes["faas.trigger"] == trigger


def test_cold_start_is_claimed_once_across_threads() -> None:
    import threading

    cold = ColdStart()
    claims: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        claims.append(cold.claim())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claims) == [False] * 7 + [True]


def test_a_forked_child_is_a_new_instance_with_its_own_cold_start() -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    script = (
        "import os, time\n"
        "from infermeter.agent import observe, testing\n"
        "@observe\n"
        "def handler():\n"
        "    return None\n"
        "with testing.capture() as cap:\n"
        "    handler()\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        handler()\n"
        "        os._exit(0 if dict(cap.spans[-1].attributes)['faas.coldstart'] else 3)\n"
        "    _, status = os.waitpid(pid, 0)\n"
        "    handler()\n"
        "    last = dict(cap.spans[-1].attributes)\n"
        "    print(os.waitstatus_to_exitcode(status), last['faas.coldstart'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["0", "False"]


def test_configure_puts_detected_attributes_on_the_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "answer-fn")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    config = configure(
        span_exporter=InMemorySpanExporter(), metrics_exporter="none", set_global=False
    )
    assert config.runtime == "serverless"
    assert config.resource["service.name"] == "answer-fn"
    assert config.resource["faas.max_memory"] == 512 * 1024 * 1024
    assert config.resource["cloud.region"] == "eu-central-1"
    assert config.settings.flush_on_return is None  # auto: on, because serverless


@pytest.mark.parametrize(
    ("environ", "gpus"),
    [
        ({"NVIDIA_VISIBLE_DEVICES": "0,1"}, {"infermeter.gpu.count": 2}),
        ({"NVIDIA_VISIBLE_DEVICES": "GPU-1b2c"}, {"infermeter.gpu.count": 1}),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, {}),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, {}),
        (
            {"INFERMETER_GPU_TYPE": "nvidia-l4", "NVIDIA_VISIBLE_DEVICES": "all"},
            {"infermeter.gpu.type": "nvidia-l4"},
        ),
        (
            {"INFERMETER_GPU_COUNT": "4", "NVIDIA_VISIBLE_DEVICES": "0"},
            {"infermeter.gpu.count": 4},
        ),
        ({"INFERMETER_GPU_COUNT": "many"}, {}),
    ],
)
def test_gpus_from_the_environment(environ: dict[str, str], gpus: dict[str, Any]) -> None:
    assert dict(detect_runtime(environ).resource) == gpus
    on_cloud_run = detect_runtime({"K_SERVICE": "embed", **environ})
    assert on_cloud_run.runtime == "serverless_container"
    assert {k: v for k, v in on_cloud_run.resource.items() if k.startswith("infermeter.")} == gpus


def test_a_custom_model_server_annotates_queue_and_model_time() -> None:
    @observe(operation="embeddings", provider="self_hosted", model="bge-small-en-v1.5")
    def embed(texts: list[str]) -> list[list[float]]:
        annotate(queue_time=0.004, model_time=0.02, input_tokens=12)
        return [[0.0, 1.0] for _ in texts]

    with testing.capture() as cap:
        embed(["a", "b"])
    attributes = cap.spans[0].attributes or {}
    assert attributes["gen_ai.provider.name"] == "self_hosted"
    assert attributes["gen_ai.latency.time_in_queue"] == 0.004
    assert attributes["gen_ai.latency.time_in_model_inference"] == 0.02


def test_app_own_tracer_provider_gets_runtime_facts_on_entry_spans() -> None:
    # No configure(): the application set its own TracerProvider, whose resource knows
    # nothing of Lambda. The entry span carries the detected facts; nested spans do not.
    script = (
        "import json\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.resources import Resource\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import "
        "InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider(resource=Resource.create({'cloud.region': 'us-east-2'}))\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "from infermeter import observe\n"
        "@observe(operation='chat')\n"
        "def inner():\n"
        "    return 1\n"
        "@observe(endpoint='/answer')\n"
        "def handler(event, context):\n"
        "    return inner()\n"
        "handler({}, None)\n"
        "spans = {s.name: dict(s.attributes) for s in exporter.get_finished_spans()}\n"
        "print(json.dumps(spans))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    env.update(
        AWS_LAMBDA_FUNCTION_NAME="answer-fn",
        AWS_REGION="eu-west-1",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    spans = json.loads(out)
    entry = spans["handler"]
    assert entry["cloud.platform"] == "aws_lambda"
    assert entry["cloud.provider"] == "aws"
    assert entry["faas.max_memory"] == 1024 * 1024 * 1024
    assert entry["faas.name"] == "answer-fn"
    # What the application's resource already says is left to the resource.
    assert "cloud.region" not in entry
    assert "cloud.platform" not in spans["inner"]
