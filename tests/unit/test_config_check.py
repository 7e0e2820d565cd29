"""`stream-monitor config check`: exit 0, or exit 2 listing every problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_monitor.cli import app

runner = CliRunner()


def check(path: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_example_configs_pass() -> None:
    root = Path(__file__).parents[2] / "config"
    examples = sorted(root.glob("*.*"))
    assert examples, "config/ holds example configs"
    for example in examples:
        code, output = check(example)
        assert code == 0, output
        assert "OK" in output


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
kafka:
  bootstrap_servers: "no-port-here"
topics:
  partitions: 0
models:
  fraud:
    drift: {warning: 0.1, critical: 0.05}
    window: {kind: hopping, size: 60}
    featurs: {amount: numeric}
  churn:
    task: ranking
    features: {tenure: date}
""",
    )
    code, output = check(path)
    assert code == 2
    expected = [
        "kafka.bootstrap_servers: 'no-port-here' must be a comma-separated list of host:port",
        "topics.partitions: 0 is invalid: input should be greater than or equal to 1",
        "models.fraud.drift.critical: 0.05 must be >= warning (0.1)",
        "models.fraud.window.step: None is required when kind is hopping",
        "models.fraud.featurs: is not a known setting",
        "models.churn.task: 'ranking' is invalid: input should be 'binary_classification'",
        "models.churn.features.tenure: 'date' is invalid: input should be 'numeric' or",
    ]
    for line in expected:
        assert line in output, f"missing {line!r} in\n{output}"
    assert "7 problems" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  m:\n    window: {kind: hopping, size: 60, step: 60}\n",
            "models.m.window.step: 60 must be < size (60.0)",
        ),
        (
            "models:\n  m:\n    performance: {warning_drop: 0.2, critical_drop: 0.1}\n",
            "models.m.performance.critical_drop: 0.1 must be >= warning_drop (0.2)",
        ),
        (
            "models:\n  m:\n    quality: {missing_warning: 0.5, missing_critical: 0.1}\n",
            "models.m.quality.missing_critical: 0.1 must be >= missing_warning (0.5)",
        ),
        (
            "models:\n  m:\n    reference: /nonexistent/ref.json\n",
            "models.m.reference: '/nonexistent/ref.json' does not exist; create it with",
        ),
        (
            "kafka: {security_protocol: SASL_SSL}\n",
            "kafka.sasl_mechanism: None is required with security_protocol SASL_SSL",
        ),
        (
            "kafka: {security_protocol: SASL_PLAINTEXT, sasl_mechanism: PLAIN}\n",
            "kafka.sasl_username: None is required with SASL security protocols",
        ),
        (
            "kafka: {security_protocol: SASL_PLAINTEXT, sasl_mechanism: GSSAPI, sasl_username: u,"
            " sasl_password: p}\n",
            "kafka.sasl_mechanism: 'GSSAPI' is invalid: input should be 'PLAIN'",
        ),
        (
            "kafka: {ssl_cafile: /nonexistent/ca.pem}\n",
            "kafka.ssl_cafile: '/nonexistent/ca.pem' does not exist or is not a file",
        ),
        (
            "processing: {guarantee: twice}\n",
            "processing.guarantee: 'twice' is invalid: input should be 'at_least_once'",
        ),
        (
            "limits: {max_event_bytes: 10}\n",
            "limits.max_event_bytes: 10 is invalid: input should be greater than or equal to 256",
        ),
        ("surprise: 1\n", "surprise: 1 is not a known setting"),
        ("kafka: 5\n", "kafka: 5 is invalid: input should be a valid dictionary"),
    ],
)
def test_single_problems_name_path_value_and_reason(
    tmp_path: Path, text: str, expected: str
) -> None:
    code, output = check(write(tmp_path, text))
    assert code == 2
    assert expected in output


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = write(tmp_path, "dummy", "client.pem")
    code, output = check(write(tmp_path, f"kafka: {{ssl_certfile: {cert}}}\n"))
    assert code == 2
    assert "kafka.ssl_keyfile: None must be set together with ssl_certfile" in output


def test_problem_from_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_LOGGING__LEVEL", "LOUD")
    code, output = check(write(tmp_path, "env: dev\n"))
    assert code == 2
    assert "logging.level: 'LOUD'" in output
    assert "(set by STREAM_MONITOR_LOGGING__LEVEL)" in output


def test_environment_value_for_a_section_must_be_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_MONITOR_MODELS", "{not json")
    code, output = check(write(tmp_path, "env: dev\n"))
    assert code == 2
    assert "environment:" in output
    assert "must be JSON" in output


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.ini", "[kafka]\n", "has an unknown extension: use .yaml, .toml or .json"),
        ("c.yaml", "kafka: [unclosed\n", "is not valid yaml:"),
        ("c.toml", "kafka = \n", "is not valid toml:"),
        ("c.json", '{"kafka": }', "is not valid json:"),
        ("c.yaml", "- just\n- a list\n", "must contain a mapping of settings at the top level"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, text, name)
    code, output = check(path)
    assert code == 2
    assert expected in output
    assert path.name in output


def test_missing_file(tmp_path: Path) -> None:
    code, output = check(tmp_path / "absent.yaml")
    assert code == 2
    assert "absent.yaml: cannot be read (No such file or directory); check the path" in output


def test_empty_file_is_valid_defaults(tmp_path: Path) -> None:
    code, output = check(write(tmp_path, ""))
    assert code == 0, output
    assert "0 models" in output
