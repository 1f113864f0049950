"""Bearer tokens: 401 without a valid one, a token's tenant pins every span it writes,
and no secret ever reaches the log or a response."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from infermeter.agent import ConfigurationError
from infermeter.agent import semconv as sc
from infermeter.collectors._auth import TokenTable
from infermeter.collectors._flatten import CLAIMED_TENANT
from infermeter.collectors.testing import (
    collector_command,
    collector_process,
    otlp_request,
    otlp_span,
    send_otlp,
)
from opentelemetry.sdk.trace import TracerProvider

ACME = "acme-secret-token-1f9a"
PIPELINE = "pipeline-secret-token-77c2"
GLOBEX = "globex-secret-token-03be"
SECRETS = (ACME, PIPELINE, GLOBEX)


def _auth_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(
        f"""
[[tokens]]
name = "acme-prod"
tenant = "acme"
sha256 = "{hashlib.sha256(ACME.encode()).hexdigest()}"

[[tokens]]
name = "shared-pipeline"
token = "{PIPELINE}"

[[tokens]]
name = "globex"
tenant = "globex"
env = "GLOBEX_INGEST_TOKEN"
"""
    )
    return path


def _claiming(tenant: str, n: int = 2) -> object:
    return otlp_request(
        [
            otlp_span(
                attributes={sc.TENANT_ID: tenant},
                events=[(sc.EMBEDDING_EVENT, {sc.EMBEDDING_VECTOR: [1.0]})],
            )
            for _ in range(n)
        ]
    )


@pytest.mark.slow
def test_tokens_authenticate_pin_tenants_and_never_leak(
    tmp_path: Path, sdk: Callable[..., TracerProvider]
) -> None:
    store = tmp_path / "store.duckdb"
    with collector_process(
        store,
        auth_file=_auth_file(tmp_path),
        log_level="debug",
        env={"GLOBEX_INGEST_TOKEN": GLOBEX},
    ) as proc:
        endpoint = proc.traces_endpoint
        refusals = [
            send_otlp(endpoint, _claiming("acme")),  # type: ignore[arg-type]
            send_otlp(endpoint, _claiming("acme"), token="not-a-token"),  # type: ignore[arg-type]
            send_otlp(endpoint, _claiming("acme"), headers={"Authorization": f"Basic {ACME}"}),  # type: ignore[arg-type]
            send_otlp(endpoint, _claiming("acme"), token=PIPELINE + "x"),  # type: ignore[arg-type]
        ]
        for response in refusals:
            assert response.status == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert not any(secret.encode() in response.body for secret in SECRETS)

        # A pinned token cannot write as another tenant, whatever the spans claim.
        assert send_otlp(endpoint, _claiming("globex"), token=ACME).status == 200  # type: ignore[arg-type]
        assert send_otlp(endpoint, _claiming("acme", 1), token=ACME, as_json=True).status == 200  # type: ignore[arg-type]
        # An unpinned token writes the tenants it claims.
        assert send_otlp(endpoint, _claiming("initech"), token=PIPELINE).status == 200  # type: ignore[arg-type]
        # A token from the environment works like one from the file.
        assert send_otlp(endpoint, _claiming("acme"), token=GLOBEX).status == 200  # type: ignore[arg-type]
        # The real SDK exporter with an Authorization header.
        provider = sdk(endpoint, headers={"Authorization": f"Bearer {ACME}"})
        with provider.get_tracer("app").start_as_current_span(
            "sdk", attributes={sc.TENANT_ID: "globex"}
        ):
            pass
        assert provider.force_flush(30_000)
        # Only the collector's control token may ask for snapshots.
        assert send_otlp(proc.url + "/v1/snapshot", b"", token=ACME).status == 401
        assert send_otlp(proc.url + "/v1/snapshot", b"", token=proc.control_token).status == 200
        assert proc.stop() == 0
        log = proc.log_text()

    assert "missing or unknown bearer token" in log
    for secret in SECRETS:
        assert secret not in log
    assert proc.control_token not in log

    con = duckdb.connect(str(store), read_only=True)
    spans = con.execute(
        f"SELECT tenant, attributes->>'$.\"{CLAIMED_TENANT}\"', count(*) FROM spans"
        " GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    embeddings = con.execute(
        "SELECT tenant, count(*) FROM embeddings GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    con.close()
    assert set(spans) == {
        ("acme", None, 1),
        ("acme", "globex", 3),  # two from the raw request, one from the SDK
        ("globex", "acme", 2),
        ("initech", None, 2),
    }
    assert embeddings == [("acme", 3), ("globex", 2), ("initech", 2)]


def _table(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> TokenTable:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return TokenTable.from_file(path, "control", environ or {})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tokens = [", "invalid TOML"),
        ("", "at least one"),
        ('[[tokens]]\ntoken = "x"', "name"),
        ('[[tokens]]\nname = "a"', "exactly one of"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\nsha256 = "ab"', "exactly one of"),
        ('[[tokens]]\nname = "a"\nsha256 = "xyz"', "64 hex digits"),
        ('[[tokens]]\nname = "a"\nenv = "NOT_SET_ANYWHERE"', "NOT_SET_ANYWHERE is not set"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\n[[tokens]]\nname = "b"\ntoken = "x"', "duplicate"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\nrole = "admin"', "unknown keys"),
        ('[[tokens]]\nname = "a"\ntoken = "x"\ntenant = 5', "tenant"),
    ],
)
def test_bad_token_files_are_configuration_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        _table(tmp_path, text)


def test_a_missing_token_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="No such file"):
        TokenTable.from_file(tmp_path / "nope.toml", "control")


def test_token_lookup() -> None:
    table = TokenTable.open("control-token")
    assert table.authenticate(None) is not None  # no auth file: anonymous writers
    assert table.authenticate("Bearer control-token").control  # type: ignore[union-attr]
    assert not table.authenticate("Bearer other").control  # type: ignore[union-attr]


def test_the_cli_refuses_a_bad_token_file_without_echoing_secrets(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(f'[[tokens]]\nname = "a"\ntoken = "{ACME}"\nsha256 = "{"0" * 64}"\n')
    result = subprocess.run(
        collector_command(tmp_path / "s.duckdb", port=0, auth_file=path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "exactly one of sha256, token, env" in result.stderr
    assert ACME not in result.stderr + result.stdout
    assert json.dumps(ACME) not in result.stderr
