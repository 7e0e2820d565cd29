"""A real single-node Apache Kafka (KRaft) assembled from Maven Central jars.

No Docker and no tarball: Maven resolves ``org.apache.kafka:kafka_2.13`` with its runtime
dependencies (plus a log4j2 binding) into ``<cache>/kafka-<version>/libs`` once; later starts
need no network. The broker runs with plain ``java`` as broker and controller on loopback, with
single-node settings for the internal topics so consumer groups and transactions work.

Records keep their event times as timestamps, and tests, replays and the chaos suite use event
times days or years in the past. With the default retention (7 days), the broker deletes such
records within minutes, mid-run (it also rolls a segment at each append for them). So a
development broker keeps everything until it is stopped (``log.retention.ms=-1``). A very large
``log.roll.ms`` was tried against the rolling and broke consumer-group assignment on a fresh
broker (a worker was assigned no partition), so it is left at its default.

The logs live in memory (``/dev/shm``, linked from the run folder as ``data``) unless
``storage="disk"`` or there is no tmpfs with room. The broker is throwaway (its folder is
deleted at each start and stop), and on disk its request threads stalled for up to a second in
page faults: each append past a page of a partition's sparse, memory-mapped index zeroes a
readahead window (8 MB on this kind of machine) that the kernel's proactive reclaim had dropped
(``perf`` showed it: ``memset`` under ``filemap_fault`` from ``LogSegment.append``). The
monitor's outputs waited behind those stalls, so alert latencies measured the disk, not the
monitor. Deleted topics leave memory after a second (``log.segment.delete.delay.ms``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from stream_monitor.config.loader import load_settings
from stream_monitor.config.settings import Settings
from stream_monitor.devtools.broker import secure
from stream_monitor.devtools.broker.process import (
    BrokerInfo,
    cache_dir,
    check_port_free,
    free_port,
    launch,
    make_log_dir,
    memory_dir,
    remove_run_dir,
    run_dir_for,
    stop,
)
from stream_monitor.errors import BrokerError

__all__ = ["DEFAULT_KAFKA_VERSION", "ensure_jars", "start_kafka"]

DEFAULT_KAFKA_VERSION = "4.1.1"
_LOG4J_VERSION = "2.24.3"  # matches the slf4j 1.7 API that Kafka 4.1 uses
_MIN_JAVA = 17
_READY = "Kafka Server started"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stream-monitor</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""

_PLAINTEXT = """listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
"""

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
{listeners}log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=4194304
log.cleaner.backoff.ms=1000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.ms=-1
log.segment.delete.delay.ms=1000
"""


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"{tool} was not found on PATH; {hint}")
    return path


def _check_java(java: str) -> None:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', result.stderr + result.stdout)
    if match is None or int(match.group(1)) < _MIN_JAVA:
        found = match.group(1) if match else "unknown"
        raise BrokerError(
            f"Apache Kafka 4 needs Java {_MIN_JAVA} or newer, found version {found}; "
            "install OpenJDK 17 (e.g. apt-get install openjdk-17-jre-headless)"
        )


def ensure_jars(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """The folder of broker jars for ``version``, fetched with Maven on first use."""
    libs = cache_dir() / f"kafka-{version}" / "libs"
    if (libs / f"kafka_2.13-{version}.jar").is_file():
        return libs
    mvn = _require("mvn", "install Maven (e.g. apt-get install maven) to fetch the Kafka jars")
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_POM.format(kafka=version, log4j=_LOG4J_VERSION), "utf-8")
    staging = work / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise BrokerError(
            f"Maven could not fetch Apache Kafka {version} (exit {result.returncode}); "
            "check the version and that Maven can reach its repository:\n" + "\n".join(output)
        )
    staging.rename(libs)
    return libs


def start_kafka(
    port: int,
    version: str = DEFAULT_KAFKA_VERSION,
    timeout: float = 90.0,
    heap_mb: int = 512,
    *,
    security: str = "plaintext",
    grants: Settings | None = None,
    storage: str = "memory",
) -> BrokerInfo:
    """Start a single-node KRaft broker on ``127.0.0.1:port`` and wait until it answers.

    ``security="sasl_ssl"``: TLS, SCRAM users and ACLs (see
    :mod:`stream_monitor.devtools.broker.secure`) that give ``User:monitor`` what the settings
    ``grants`` (default settings when None) use.
    ``storage="memory"``: the logs in ``/dev/shm`` when it has room (see the module's doc).
    """
    if security not in ("plaintext", "sasl_ssl"):
        raise BrokerError(f"security {security!r} is not supported; use plaintext or sasl_ssl")
    if storage not in ("memory", "disk"):
        raise BrokerError(f"storage {storage!r} is not supported; use memory or disk")
    java = _require("java", "install OpenJDK 17 or newer (e.g. apt-get install openjdk-17-jre)")
    _check_java(java)
    check_port_free(port)
    libs = ensure_jars(version)
    run_dir = run_dir_for("kafka", port)
    remove_run_dir(run_dir)
    memory = memory_dir() if storage == "memory" else None
    data = make_log_dir(run_dir, f"kafka-{port}", memory=memory)
    controller = free_port()
    users: list[str] = []
    if security == "sasl_ssl":
        listeners, users = secure.prepare(run_dir, port, controller)
    else:
        listeners = _PLAINTEXT.format(port=port, controller=controller)
    props = run_dir / "server.properties"
    props.write_text(_SERVER.format(controller=controller, listeners=listeners, data=data), "utf-8")
    props.chmod(0o600)  # with sasl_ssl it holds the inter-broker password
    log_config = run_dir / "log4j2.yaml"
    log_config.write_text(_LOG4J2, "utf-8")
    classpath = str(libs / "*")
    base = [java, f"-Dlog4j2.configurationFile={log_config}", "-cp", classpath]
    cluster = (
        subprocess.run(
            [*base, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.strip()
        .splitlines()
    )
    if not cluster:
        raise BrokerError("kafka.tools.StorageTool random-uuid printed nothing; jars broken?")
    fmt = subprocess.run(
        [
            *base,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster[-1],
            "-c",
            str(props),
            "--standalone",
            *users,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise BrokerError(f"formatting the KRaft log dir failed:\n{fmt.stdout}{fmt.stderr}")
    jvm = [
        java,
        f"-Xmx{heap_mb}m",
        f"-Xms{heap_mb // 2}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(props),
    ]
    info = launch(
        kind="kafka", port=port, argv=jvm, run_dir=run_dir, ready_marker=_READY, timeout=timeout
    )
    if security == "sasl_ssl":
        setup = secure.SecureSetup(run_dir, port)
        try:
            secure.grant(java, classpath, log_config, setup, grants or load_settings())
        except BrokerError:
            stop(info)
            raise
    return info
