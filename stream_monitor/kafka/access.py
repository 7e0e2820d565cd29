"""A start-up check of what the broker lets this client do, with errors that name the setting.

aiokafka reports a wrong password or an unknown CA as "Unable to bootstrap" and a missing ACL as
a silent empty metadata answer or an error deep in a rebalance. Every command that talks to
Kafka first calls :func:`check_access`: one connection to the first bootstrap server, one
metadata request for the topics it uses and, for commands in a consumer group or with
transactions, one coordinator lookup. Each refusal becomes a :class:`AccessError` problem that
names the setting, the topic, group or user, and what to do (exit code 2, like any configuration
error). Secrets never go into a message. A broker that does not answer at all is not an access
problem: the command's own retries and messages handle it.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest

from stream_monitor.config.settings import KafkaSettings, Settings
from stream_monitor.errors import ConfigError, ConfigProblem
from stream_monitor.kafka.connection import client_kwargs

__all__ = ["AccessError", "check_access", "check_settings"]

log = logging.getLogger(__name__)

_UNKNOWN_TOPIC = 3
_TOPIC_AUTHORIZATION_FAILED = 29
_GROUP_AUTHORIZATION_FAILED = 30
_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


class AccessError(ConfigError):
    """The broker refused this client: its TLS, its credentials or its ACLs (exit code 2)."""


def _principal(kafka: KafkaSettings) -> str:
    if kafka.security_protocol.startswith("SASL") and kafka.sasl_username:
        return f"User:{kafka.sasl_username}"
    return "this client's principal"


def _connection_problem(kafka: KafkaSettings, address: str, exc: BaseException) -> ConfigProblem:
    """The problem behind a refused connection, or None when it is not one of access."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else "(the system's CAs)"
            return ConfigProblem(
                "kafka.ssl_cafile",
                cafile,
                f"does not verify the certificate of the broker at {address} "
                f"({seen.verify_message}); set kafka.ssl_cafile to the CA that signed it",
            )
        if isinstance(seen, ssl.SSLError):
            why = getattr(seen, "reason", None) or seen
            return ConfigProblem(
                "kafka.security_protocol",
                kafka.security_protocol,
                f"TLS with the broker at {address} failed ({why}); check that its listener "
                "speaks TLS and kafka.ssl_* match it",
            )
        if isinstance(seen, SaslAuthenticationFailed):
            return ConfigProblem(
                "kafka.sasl_password",
                "",
                f"was refused: the broker at {address} did not authenticate "
                f"kafka.sasl_username {kafka.sasl_username!r} with {kafka.sasl_mechanism}; "
                "check the user name and password (and the mechanism)",
            )
        if isinstance(seen, UnsupportedSaslMechanismError):
            return ConfigProblem(
                "kafka.sasl_mechanism",
                str(kafka.sasl_mechanism),
                f"is not enabled on the broker at {address}; use one its listener enables",
            )
        seen = seen.__cause__ or seen.__context__
    raise exc


async def check_access(
    kafka: KafkaSettings,
    topics: Mapping[str, str],
    *,
    group: str | None = None,
    transactional_id: str | None = None,
    existing: bool = False,
) -> None:
    """Raise :class:`AccessError` listing what the broker refuses: the connection (TLS,
    SASL), any of ``topics`` (setting path -> topic name), the consumer ``group``, the
    ``transactional_id``; with ``existing``, also topics that do not exist. Returns quietly
    when the broker cannot be reached."""
    address = kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = address.rpartition(":")
    kwargs = client_kwargs(kafka)
    del kwargs["bootstrap_servers"]
    source = f"access to the broker at {address}"
    try:
        conn = await create_conn(host.strip("[]"), int(port), **kwargs)
    except Exception as exc:  # noqa: BLE001 - classified below; the rest is not ours to judge
        try:
            problem = _connection_problem(kafka, address, exc)
        except Exception:  # noqa: BLE001
            log.debug("access check skipped: %s unreachable (%r)", address, exc)
            return
        raise AccessError([problem], source) from None
    problems: list[ConfigProblem] = []
    principal = _principal(kafka)
    try:
        refused: set[str] = set()
        unknown: set[str] = set()
        if topics:
            answer = await conn.send(MetadataRequest(sorted(set(topics.values())), False))
            refused = {t[1] for t in answer.topics if t[0] == _TOPIC_AUTHORIZATION_FAILED}
            unknown = {t[1] for t in answer.topics if t[0] == _UNKNOWN_TOPIC} if existing else set()
        problems += [
            ConfigProblem(
                path,
                name,
                f"is a topic {principal} is not authorized for (TOPIC_AUTHORIZATION_FAILED); "
                f"grant it access with an ACL or set {path} to a topic it may use",
            )
            for path, name in topics.items()
            if name in refused
        ]
        problems += [
            ConfigProblem(
                path,
                name,
                f"does not exist on the broker at {address}; create it (a worker with "
                "topics.auto_create creates its topics) or name an existing topic",
            )
            for path, name in topics.items()
            if name in unknown
        ]
        lookups = [
            (key, kind, path, code)
            for key, kind, path, code in (
                (group, 0, "kafka.group_id", _GROUP_AUTHORIZATION_FAILED),
                (
                    transactional_id,
                    1,
                    "processing.guarantee",
                    _TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                ),
            )
            if key is not None
        ]
        for key, kind, path, code in lookups:
            found = await conn.send(FindCoordinatorRequest(key, kind))
            if found.error_code != code:
                continue
            if kind == 0:
                problems.append(
                    ConfigProblem(
                        path,
                        str(key),
                        f"is a consumer group {principal} is not authorized for "
                        "(GROUP_AUTHORIZATION_FAILED); grant it access with an ACL or set "
                        f"{path} to a group it may use",
                    )
                )
            else:
                problems.append(
                    ConfigProblem(
                        path,
                        "exactly_once",
                        f"needs transactional ids like {key!r}, which {principal} is not "
                        "authorized for (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); grant it an ACL "
                        "on them (e.g. prefixed by the group id) or use at_least_once",
                    )
                )
    except KafkaError as exc:  # the broker went away mid-check: not an access problem
        log.debug("access check cut short by %r", exc)
    finally:
        conn.close()
    if problems:
        raise AccessError(problems, source)


async def check_settings(
    settings: Settings, *topics: str, group: bool = False, transactions: bool = False
) -> None:
    """:func:`check_access` for the ``topics.<name>`` settings named in ``topics`` (all six
    when none is named), the settings' consumer group when ``group``, and its partitions'
    transactional ids when ``transactions``."""
    names = topics or ("predictions", "labels", "alerts", "metrics", "dead_letters", "state")
    kafka = settings.kafka
    await check_access(
        kafka,
        {f"topics.{name}": getattr(settings.topics, name) for name in names},
        group=kafka.group_id if group else None,
        transactional_id=(
            f"{kafka.group_id}.{settings.topics.predictions}.0" if transactions else None
        ),
    )
