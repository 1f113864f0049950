"""Record what a real GenAI instrumentation package exports, as a replayable fixture.

Run by ``record.sh`` inside a throwaway venv holding ONE emitter (they conflict with each
other), never by the test suite::

    python tests/interop/record.py EMITTER OUT.json

The emitter instruments the real ``openai`` SDK calling the fake OpenAI server
(``fake_openai.py``) on 127.0.0.1 and exports OTLP/HTTP to a capture server here, which
keeps every body exactly as sent. The same calls run for every emitter:

1. three chat completions (``gpt-4o-mini``), one request each;
2. one streamed chat completion with ``stream_options.include_usage``;
3. one embeddings call (``text-embedding-3-small``);
4. two chat completions the server throttles (429, ``Retry-After: 2``; ``max_retries=0``).

The tenant is set the way each emitter's users set it (none for openai-v2 and OpenLIT).
``fastapi`` is different: two HTTP requests into a FastAPI app (with
``opentelemetry-instrumentation-fastapi`` and openai-v2) carrying an upstream
``traceparent`` (a remote parent), the handler tagging its server span with ``tenant.id``
and making one chat call; a third request is throttled upstream and answered 429.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import json
import platform
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# The recording venvs hold no infermeter and no tests package: import the server by path.
sys.path.insert(0, str(Path(__file__).parent))
import fake_openai

PACKAGES = {
    "openai-v2": [
        "openai",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-httpx",
    ],
    "fastapi": [
        "openai",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-fastapi",
        "fastapi",
        "uvicorn",
    ],
    "traceloop": ["openai", "traceloop-sdk", "opentelemetry-instrumentation-openai"],
    "openinference": [
        "openai",
        "opentelemetry-sdk",
        "openinference-instrumentation-openai",
        "openinference-semantic-conventions",
    ],
    "openlit": ["openai", "openlit", "opentelemetry-sdk"],
}


class _Capture(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []  # noqa: RUF012

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.bodies.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "content_encoding": self.headers.get("Content-Encoding"),
                "body_base64": base64.b64encode(data).decode(),
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _calls(client: Any) -> None:
    import openai

    for _ in range(3):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    for _ in range(2):
        with contextlib.suppress(openai.RateLimitError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": fake_openai.THROTTLE}]
            )


def _sdk(endpoint: str, service: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint + "/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


def _openai_v2(endpoint: str, client: Any) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    provider = _sdk(endpoint, "interop-openai-v2")
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    # The SDK's HTTP client spans: the 429 is also on them (http.response.status_code).
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _calls(client())
    provider.force_flush()


def _fastapi(endpoint: str, client: Any) -> None:
    import urllib.error
    import urllib.request

    import openai
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    provider = _sdk(endpoint, "interop-fastapi")
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    app = FastAPI()
    api = client()

    @app.post("/v1/answer/{topic}")
    def answer(topic: str) -> dict[str, str]:
        trace.get_current_span().set_attribute("tenant.id", "acme")
        try:
            reply = api.chat.completions.create(
                model="gpt-4o-mini",
                messages=[
                    {"role": "user", "content": fake_openai.THROTTLE if topic == "busy" else topic}
                ],
            )
        except openai.RateLimitError:
            raise HTTPException(429, "upstream busy", headers={"Retry-After": "2"}) from None
        return {"answer": reply.choices[0].message.content or ""}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    for i, topic in enumerate(("weather", "news", "busy")):
        # An upstream service's traceparent: the server span's parent is remote.
        trace_id = f"{i + 1:032x}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/answer/{topic}",
            method="POST",
            headers={"traceparent": f"00-{trace_id}-00000000000000a{i + 1}-01"},
        )
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except urllib.error.HTTPError as exc:
            assert exc.code == 429
    server.should_exit = True
    thread.join(10)
    provider.force_flush()


def _traceloop(endpoint: str, client: Any) -> None:
    from opentelemetry import trace
    from traceloop.sdk import Traceloop

    Traceloop.init(
        app_name="interop-traceloop",
        api_endpoint=endpoint,
        disable_batch=True,
        telemetry_enabled=False,
    )
    Traceloop.set_association_properties({"tenant_id": "acme"})
    _calls(client())
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]


def _openinference(endpoint: str, client: Any) -> None:
    from openinference.instrumentation import using_metadata
    from openinference.instrumentation.openai import OpenAIInstrumentor

    provider = _sdk(endpoint, "interop-openinference")
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    with using_metadata({"tenant": "acme"}):
        _calls(client())
    provider.force_flush()


def _openlit(endpoint: str, client: Any, pricing: Path) -> None:
    import openlit
    from opentelemetry import metrics, trace

    openlit.init(
        otlp_endpoint=endpoint,
        application_name="interop-openlit",
        environment="test",
        disable_batch=True,
        pricing_json=str(pricing),
    )
    _calls(client())
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    provider = metrics.get_meter_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()


def main(emitter: str, out: Path) -> None:
    import openai

    capture = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{capture.server_address[1]}"
    with fake_openai.FakeOpenAI() as api:

        def client() -> Any:
            return openai.OpenAI(base_url=api.base_url, api_key="sk-fake", max_retries=0)

        if emitter == "openai-v2":
            _openai_v2(endpoint, client)
        elif emitter == "fastapi":
            _fastapi(endpoint, client)
        elif emitter.startswith("traceloop"):
            _traceloop(endpoint, client)
        elif emitter == "openinference":
            _openinference(endpoint, client)
        elif emitter == "openlit":
            # OpenLIT prices calls itself (per 1k tokens) from this file: list prices.
            pricing = out.with_suffix(".pricing.json")
            pricing.write_text(
                json.dumps(
                    {
                        "chat": {
                            "gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006}
                        },
                        "embeddings": {"text-embedding-3-small": 0.00002},
                    }
                )
            )
            try:
                _openlit(endpoint, client, pricing)
            finally:
                pricing.unlink()
        else:
            raise SystemExit(f"unknown emitter {emitter!r}")
    time.sleep(0.5)
    capture.shutdown()
    versions = {}
    for name in PACKAGES["traceloop" if emitter.startswith("traceloop") else emitter]:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    document = {
        "emitter": emitter,
        "packages": versions,
        "python": platform.python_version(),
        "recorded_with": f"tests/interop/record.sh {emitter}",
        "fake_server": {
            "prompt_tokens": fake_openai.PROMPT_TOKENS,
            "completion_tokens": fake_openai.COMPLETION_TOKENS,
            "embedding_tokens": fake_openai.EMBEDDING_TOKENS,
            "retry_after_s": fake_openai.RETRY_AFTER_S,
        },
        "exports": _Capture.bodies,
    }
    out.write_text(json.dumps(document, indent=1) + "\n")
    traces = sum(1 for body in _Capture.bodies if body["path"].endswith("/v1/traces"))
    print(f"{emitter}: {len(_Capture.bodies)} exports ({traces} of traces) -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
