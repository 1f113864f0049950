#!/usr/bin/env bash
# Re-record the interop fixtures: each emitter in its own throwaway venv under /tmp (the
# packages conflict with each other), pinned to the versions below, calling the fake
# OpenAI server; writes tests/interop/recordings/EMITTER.json. Run by hand, never in CI:
#
#   bash tests/interop/record.sh              # every emitter
#   bash tests/interop/record.sh openlit      # one
#
# Pins are the versions recorded (each fixture's "packages" header says what ran). The
# openai-v2 instrumentation 2.4b0 needs an opentelemetry-util-genai before 1.0 (1.x renamed
# the module it imports), and imports httpx while openai 3.x no longer depends on it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/recordings"
mkdir -p "$out"

pins() {
  case "$1" in
    openai-v2) echo "openai==3.63.0 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-instrumentation-openai-v2==2.4b0 opentelemetry-util-genai<1 opentelemetry-instrumentation-httpx==0.66b2 httpx" ;;
    fastapi) echo "openai==3.63.0 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-instrumentation-openai-v2==2.4b0 opentelemetry-util-genai<1 opentelemetry-instrumentation-fastapi==0.66b2 fastapi==0.165.0 uvicorn==0.55.0 httpx" ;;
    traceloop) echo "openai==3.63.0 traceloop-sdk==0.62.4 httpx" ;;
    traceloop-0.45) echo "openai==1.109.1 traceloop-sdk==0.45.6" ;;
    openinference) echo "openai==3.63.0 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 openinference-instrumentation-openai==0.1.66" ;;
    openlit) echo "openai==2.54.0 openlit==1.45.0" ;;
    *) echo "unknown emitter $1" >&2; return 1 ;;
  esac
}

emitters=("$@")
[ ${#emitters[@]} -eq 0 ] && emitters=(openai-v2 fastapi traceloop traceloop-0.45 openinference openlit)
for emitter in "${emitters[@]}"; do
  venv="$(mktemp -d /tmp/infermeter-record-XXXXXX)"
  uv venv -q "$venv"
  # shellcheck disable=SC2046 # the pins are words on purpose
  uv pip install -q -p "$venv/bin/python" $(pins "$emitter")
  "$venv/bin/python" "$here/record.py" "$emitter" "$out/$emitter.json"
  rm -rf "$venv"
done
