"""The span contract (public): every attribute and metric name infermeter emits, in one place.

GenAI names follow OpenTelemetry semantic conventions v1.41.0. The GenAI conventions
moved to the ``semantic-conventions-genai`` repository afterwards with breaking renames
still unreleased; keeping every name here makes that migration one edit. The collector
and analytics import these constants too, so a rename cannot split the contract.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BUCKETS_DURATION_S",
    "BUCKETS_INIT_DURATION_S",
    "BUCKETS_TOKENS",
    "CLOUD_PLATFORM",
    "CLOUD_PROVIDER",
    "CLOUD_REGION",
    "EMBEDDING_EVENT",
    "EMBEDDING_KIND",
    "EMBEDDING_KINDS",
    "EMBEDDING_KIND_DOCUMENT",
    "EMBEDDING_KIND_QUERY",
    "EMBEDDING_KIND_RESPONSE",
    "EMBEDDING_VECTOR",
    "ERROR_TYPE",
    "FAAS_COLDSTART",
    "FAAS_INSTANCE",
    "FAAS_INVOCATION_ID",
    "FAAS_MAX_MEMORY",
    "FAAS_NAME",
    "FAAS_TRIGGER",
    "FAAS_VERSION",
    "GEN_AI_EVALUATION_EXPLANATION",
    "GEN_AI_EVALUATION_NAME",
    "GEN_AI_EVALUATION_RESULT",
    "GEN_AI_EVALUATION_SCORE_LABEL",
    "GEN_AI_EVALUATION_SCORE_VALUE",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_LATENCY_E2E",
    "GEN_AI_LATENCY_TIME_IN_MODEL_DECODE",
    "GEN_AI_LATENCY_TIME_IN_MODEL_EXECUTE",
    "GEN_AI_LATENCY_TIME_IN_MODEL_FORWARD",
    "GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE",
    "GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL",
    "GEN_AI_LATENCY_TIME_IN_QUEUE",
    "GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_PROMPT_NAME",
    "GEN_AI_PROMPT_VERSION",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_SYSTEM_DEPRECATED",
    "GEN_AI_TOKEN_TYPE",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "HOST_NAME",
    "INFERMETER_CLAIMED_TENANT",
    "INFERMETER_EMBEDDINGS_DROPPED",
    "INFERMETER_ENDPOINT",
    "INFERMETER_ENTRY",
    "INFERMETER_FEEDBACK_COMMENT",
    "INFERMETER_GPU_COUNT",
    "INFERMETER_GPU_TYPE",
    "INFERMETER_INDEX_VERSION",
    "INFERMETER_INITIALIZATION_TYPE",
    "INFERMETER_INIT_DURATION",
    "INFERMETER_QUERY_FINGERPRINT",
    "INFERMETER_RETRIES",
    "INFERMETER_RETRIEVAL_IDS",
    "INFERMETER_RETRIEVAL_SCORES",
    "INFERMETER_RETRIEVAL_USED_IDS",
    "INFERMETER_RETRY_AFTER",
    "INFERMETER_RUNTIME",
    "INFERMETER_SCOPE",
    "INFERMETER_THROTTLED",
    "METRIC_FAAS_COLDSTARTS",
    "METRIC_FAAS_INIT_DURATION",
    "METRIC_OPERATION_DURATION",
    "METRIC_TIME_TO_FIRST_CHUNK",
    "METRIC_TOKEN_USAGE",
    "OPERATION_EMBEDDINGS",
    "PLATFORM_AWS_ECS",
    "PLATFORM_AWS_LAMBDA",
    "PLATFORM_AZURE_CONTAINER_APPS",
    "PLATFORM_AZURE_FUNCTIONS",
    "PLATFORM_GCP_CLOUD_FUNCTIONS",
    "PLATFORM_GCP_CLOUD_RUN",
    "PROVIDER_AWS",
    "PROVIDER_AZURE",
    "PROVIDER_GCP",
    "PROVIDER_SELF_HOSTED",
    "RUNTIMES",
    "RUNTIME_CONTAINER",
    "RUNTIME_SERVERLESS",
    "RUNTIME_SERVERLESS_CONTAINER",
    "RUNTIME_UNKNOWN",
    "SERVICE_INSTANCE_ID",
    "SERVICE_NAME",
    "TENANT_ID",
    "TOKEN_TYPE_INPUT",
    "TOKEN_TYPE_OUTPUT",
    "USER_FEEDBACK",
]

# --- GenAI (semantic conventions v1.41.0) ---------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
# Deprecated in favour of gen_ai.provider.name; read (never written) for older emitters.
GEN_AI_SYSTEM_DEPRECATED: Final = "gen_ai.system"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"  # seconds
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"  # metric attribute: "input" | "output"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
# Opt-in content capture (JSON strings; recorded only when message content capture is on).
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"
# Model servers (vLLM, SGLang) emit these until the conventions name them; seconds. Read by
# the collector into the queue_ms / model_ms columns (never written by the decorator except
# through annotate(queue_time=..., model_time=...) for a custom server).
GEN_AI_LATENCY_TIME_IN_QUEUE: Final = "gen_ai.latency.time_in_queue"
GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN: Final = "gen_ai.latency.time_to_first_token"
GEN_AI_LATENCY_E2E: Final = "gen_ai.latency.e2e"
# vLLM v1: scheduled -> last token (prefill + decode); v0 with detailed traces: forward/execute.
GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE: Final = "gen_ai.latency.time_in_model_inference"
GEN_AI_LATENCY_TIME_IN_MODEL_EXECUTE: Final = "gen_ai.latency.time_in_model_execute"
GEN_AI_LATENCY_TIME_IN_MODEL_FORWARD: Final = "gen_ai.latency.time_in_model_forward"
GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL: Final = "gen_ai.latency.time_in_model_prefill"
GEN_AI_LATENCY_TIME_IN_MODEL_DECODE: Final = "gen_ai.latency.time_in_model_decode"
# Token counts under their pre-1.27 names, still emitted by vLLM's tracing.
GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED: Final = "gen_ai.usage.completion_tokens"
# gen_ai.provider.name of a model the team serves itself (priced by GPU time, not tokens).
PROVIDER_SELF_HOSTED: Final = "self_hosted"
# gen_ai.operation.name of calls whose return value carries embedding vectors.
OPERATION_EMBEDDINGS: Final = "embeddings"

# --- FaaS / cloud ------------------------------------------------------------------------
FAAS_COLDSTART: Final = "faas.coldstart"
FAAS_INVOCATION_ID: Final = "faas.invocation_id"
FAAS_TRIGGER: Final = "faas.trigger"
FAAS_NAME: Final = "faas.name"  # resource
FAAS_MAX_MEMORY: Final = "faas.max_memory"  # resource, bytes
FAAS_VERSION: Final = "faas.version"  # resource
FAAS_INSTANCE: Final = "faas.instance"  # resource
CLOUD_PROVIDER: Final = "cloud.provider"  # resource
CLOUD_REGION: Final = "cloud.region"  # resource
CLOUD_PLATFORM: Final = "cloud.platform"  # resource
SERVICE_NAME: Final = "service.name"  # resource
SERVICE_INSTANCE_ID: Final = "service.instance.id"  # resource; counts container instances
HOST_NAME: Final = "host.name"  # resource; the instance when service.instance.id is absent

# cloud.provider / cloud.platform values the runtime detection emits (semantic conventions).
PROVIDER_AWS: Final = "aws"
PROVIDER_GCP: Final = "gcp"
PROVIDER_AZURE: Final = "azure"
PLATFORM_AWS_LAMBDA: Final = "aws_lambda"
PLATFORM_AWS_ECS: Final = "aws_ecs"
PLATFORM_GCP_CLOUD_RUN: Final = "gcp_cloud_run"
PLATFORM_GCP_CLOUD_FUNCTIONS: Final = "gcp_cloud_functions"
PLATFORM_AZURE_FUNCTIONS: Final = "azure.functions"
PLATFORM_AZURE_CONTAINER_APPS: Final = "azure.container_apps"

# --- GPUs: no resource convention exists; ours, set from the environment or by hand ------
INFERMETER_GPU_TYPE: Final = "infermeter.gpu.type"  # resource, e.g. "nvidia-l4", "a10g"
INFERMETER_GPU_COUNT: Final = "infermeter.gpu.count"  # resource, GPUs visible to the process

# --- Tenant: no convention exists (semantic-conventions#162 is open) ---------------------
TENANT_ID: Final = "tenant.id"

# --- infermeter's own (no convention) -----------------------------------------------------
INFERMETER_SCOPE: Final = "infermeter"  # instrumentation scope (tracer and meter name)
INFERMETER_RUNTIME: Final = "infermeter.runtime"
INFERMETER_ENDPOINT: Final = "infermeter.endpoint"
# True on the outermost observed span of a call tree in a process: one "request".
INFERMETER_ENTRY: Final = "infermeter.entry"
INFERMETER_INIT_DURATION: Final = "infermeter.init_duration"  # seconds, on cold starts
# Lambda initialization type at the cold start: on-demand, provisioned-concurrency, snap-start.
INFERMETER_INITIALIZATION_TYPE: Final = "infermeter.initialization_type"
INFERMETER_THROTTLED: Final = "infermeter.throttled"
# Where the collector keeps the tenant a span claimed when its ingest token pins another.
INFERMETER_CLAIMED_TENANT: Final = "infermeter.claimed_tenant"
INFERMETER_RETRY_AFTER: Final = "infermeter.retry_after"  # seconds
# Attempts made before this one for the same call under one parent span (0 = first try).
INFERMETER_RETRIES: Final = "infermeter.retries"

# Sampled embedding vectors travel as span events, one event per vector.
EMBEDDING_EVENT: Final = "infermeter.embedding"
EMBEDDING_KIND: Final = "infermeter.embedding.kind"  # query | document | response
EMBEDDING_VECTOR: Final = "infermeter.embedding.vector"  # float[]
EMBEDDING_KIND_QUERY: Final = "query"
EMBEDDING_KIND_DOCUMENT: Final = "document"
EMBEDDING_KIND_RESPONSE: Final = "response"
EMBEDDING_KINDS: Final = (EMBEDDING_KIND_QUERY, EMBEDDING_KIND_DOCUMENT, EMBEDDING_KIND_RESPONSE)
# Span attribute: sampled vectors not attached because they exceeded the per-span bounds.
INFERMETER_EMBEDDINGS_DROPPED: Final = "infermeter.embedding.dropped"

# --- Quality: evaluations, feedback, retrieval ---------------------------------------------
# The GenAI evaluation event (development stability in the GenAI conventions): a span event
# on the evaluated span, or a log record (LogRecord.event_name) parented to it, or carrying
# gen_ai.response.id when the span id is not known.
GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"  # required
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"  # double
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"  # low cardinality
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
# The evaluation name infermeter.feedback() uses for end-user thumbs up/down.
USER_FEEDBACK: Final = "user_feedback"
INFERMETER_FEEDBACK_COMMENT: Final = "infermeter.feedback.comment"
# Retrieval (no convention names the retrieved document ids yet): on the retrieval span.
INFERMETER_RETRIEVAL_IDS: Final = "infermeter.retrieval.ids"  # string[], in rank order
INFERMETER_RETRIEVAL_USED_IDS: Final = "infermeter.retrieval.used_ids"  # string[] cited/used
INFERMETER_RETRIEVAL_SCORES: Final = "infermeter.retrieval.scores"  # double[], rank order
# A stable hash of the normalised query, to compare top-k results of the same query.
INFERMETER_QUERY_FINGERPRINT: Final = "infermeter.retrieval.query_fingerprint"
INFERMETER_INDEX_VERSION: Final = "infermeter.retrieval.index_version"

RUNTIME_SERVERLESS: Final = "serverless"
RUNTIME_SERVERLESS_CONTAINER: Final = "serverless_container"
RUNTIME_CONTAINER: Final = "container"
RUNTIME_UNKNOWN: Final = "unknown"
RUNTIMES: Final = (
    RUNTIME_SERVERLESS,
    RUNTIME_SERVERLESS_CONTAINER,
    RUNTIME_CONTAINER,
    RUNTIME_UNKNOWN,
)

# --- Metrics ------------------------------------------------------------------------------
# Duration and token buckets are the GenAI convention's advice; the FaaS conventions give
# none for init duration, so those boundaries are ours (cold starts of 5 ms to 10 s).
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"  # s
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # {token}
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"  # s
METRIC_FAAS_COLDSTARTS: Final = "faas.coldstarts"  # {coldstart}
METRIC_FAAS_INIT_DURATION: Final = "faas.init_duration"  # s

BUCKETS_DURATION_S: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
BUCKETS_TOKENS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
BUCKETS_INIT_DURATION_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
