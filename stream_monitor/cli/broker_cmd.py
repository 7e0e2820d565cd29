"""``stream-monitor broker start|stop|status``: development brokers on loopback."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from stream_monitor.cli.common import (
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)
from stream_monitor.devtools.broker import (
    DEFAULT_KAFKA_VERSION,
    restart,
    running_brokers,
    start_kafka,
    start_tansu,
    stop,
)
from stream_monitor.devtools.broker.secure import SecureSetup
from stream_monitor.errors import ConfigError, ConfigProblem

__all__ = ["broker_app"]

broker_app = typer.Typer(help="Run a local broker for development and tests.", no_args_is_help=True)


class Security(StrEnum):
    """How clients connect to the broker."""

    plaintext = "plaintext"
    sasl_ssl = "sasl_ssl"


class Storage(StrEnum):
    """Where a Kafka broker keeps its logs."""

    memory = "memory"
    disk = "disk"


class BrokerKind(StrEnum):
    """Which broker to run."""

    kafka = "kafka"
    tansu = "tansu"


@broker_app.command("start")
def start(
    kind: Annotated[
        BrokerKind,
        typer.Option(help="kafka: real Apache Kafka (KRaft) from Maven jars; tansu: embedded."),
    ] = BrokerKind.kafka,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 9092,
    kafka_version: Annotated[
        str, typer.Option(help="Apache Kafka version (kind kafka).")
    ] = DEFAULT_KAFKA_VERSION,
    timeout: Annotated[float, typer.Option(help="Seconds to wait until it answers.")] = 90.0,
    security: Annotated[
        Security,
        typer.Option(
            help="sasl_ssl (kind kafka): TLS, SCRAM-SHA-512 users and ACLs; the monitor's "
            "settings are written to client.yaml in the broker's run folder."
        ),
    ] = Security.plaintext,
    storage: Annotated[
        Storage,
        typer.Option(
            help="memory (kind kafka): the logs in /dev/shm when it has 2 GB free, else on "
            "disk; the broker's data is deleted at stop either way."
        ),
    ] = Storage.memory,
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Start a broker in the background and print its bootstrap address when it answers.

    With --security sasl_ssl, User:monitor is granted the topics, group and transactional ids
    of the configuration given with --config/--set (the defaults otherwise), nothing else."""
    with reported_errors():
        if kind is BrokerKind.kafka:
            grants = load_from_flags(config, sets) if security is Security.sasl_ssl else None
            err_console.print(f"starting Apache Kafka {kafka_version} on 127.0.0.1:{port} ...")
            info = start_kafka(
                port,
                kafka_version,
                timeout,
                security=security.value,
                grants=grants,
                storage=storage.value,
            )
        else:
            if security is not Security.plaintext:
                raise ConfigError(
                    [ConfigProblem("--security", security.value, "needs --kind kafka")]
                )
            err_console.print(f"starting Tansu on 127.0.0.1:{port} ...")
            info = start_tansu(port, timeout)
    err_console.print(f"{info.kind} is ready (pid {info.pid}, log {info.log_file})")
    if security is Security.sasl_ssl:
        client = SecureSetup(info.run_dir, info.port).client_config
        err_console.print(
            f"TLS and SASL/SCRAM-SHA-512 on; User:monitor's kafka settings (with its password, "
            f"readable by you only): {client}",
            markup=False,
        )
    typer.echo(info.bootstrap)


@broker_app.command("stop")
def stop_cmd(
    port: Annotated[
        int | None, typer.Option(help="Stop only the broker on this port (default: all).")
    ] = None,
) -> None:
    """Stop brokers started with `broker start` (cleanly, then forcefully after 30 s)."""
    targets = [b for b in running_brokers() if port is None or b.port == port]
    if not targets:
        err_console.print("no running broker" + (f" on port {port}" if port else ""))
        return
    for info in targets:
        stop(info)
        err_console.print(f"stopped {info.kind} on {info.bootstrap} (pid {info.pid})")


@broker_app.command("restart")
def restart_cmd(
    port: Annotated[int, typer.Option(help="Port of the broker to restart.", min=1, max=65535)],
    down_for: Annotated[
        float, typer.Option(help="Seconds to stay down before starting again.", min=0)
    ] = 0.0,
) -> None:
    """Stop a broker cleanly and start it again with its data (an outage for chaos tests)."""
    targets = [b for b in running_brokers() if b.port == port]
    if not targets:
        err_console.print(f"no running broker on port {port}; see `stream-monitor broker status`")
        raise typer.Exit(1)
    with reported_errors():
        info = restart(targets[0], down_for)
    err_console.print(f"{info.kind} is back on {info.bootstrap} (pid {info.pid})")
    typer.echo(info.bootstrap)


@broker_app.command("status")
def status() -> None:
    """List brokers started with `broker start` that are still running."""
    brokers = running_brokers()
    if not brokers:
        err_console.print("no running broker")
    for info in brokers:
        typer.echo(f"{info.kind}\t{info.bootstrap}\tpid {info.pid}\t{info.log_file}")
