"""A secured single-node Apache Kafka: TLS, SASL/SCRAM-SHA-512 users and ACLs.

``broker start --security sasl_ssl`` builds on :mod:`stream_monitor.devtools.broker.apache`:

- certificates made for the run (``openssl``): a CA, and a broker certificate for 127.0.0.1 and
  localhost signed by it;
- one ``SASL_SSL`` listener for clients and the broker itself (as the super user ``admin``), and
  the KRaft controller listener on TLS with client certificates (the broker's own);
- two SCRAM-SHA-512 users written at format time: ``admin`` (super user) and ``monitor``;
- the ``StandardAuthorizer`` with no access where no ACL grants it, and ACLs that give
  ``User:monitor`` only the topics, group and transactional ids of one configuration
  (:func:`monitor_acls`).

Passwords are random per run and written only to files of the run folder readable by their owner
(``client.yaml`` holds the monitor's connection settings); nothing prints them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from stream_monitor.config.settings import Settings
from stream_monitor.errors import BrokerError

__all__ = [
    "MONITOR_USER",
    "SecureSetup",
    "grant",
    "make_certificates",
    "monitor_acls",
    "prepare",
]

MONITOR_USER = "monitor"
ADMIN_USER = "admin"
BROKER_SUBJECT = "stream-monitor-broker"
_MECHANISM = "SCRAM-SHA-512"
_GRANT = Path(__file__).with_name("Grant.java")

# Replaces the PLAINTEXT listener lines of apache._SERVER.
_LISTENERS = """listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms={mechanism}
sasl.mechanism.inter.broker.protocol={mechanism}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="{admin}" password="{admin_password}";
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{admin};User:CN={subject}
"""


@dataclass(frozen=True)
class SecureSetup:
    """The files of a secured broker's run folder."""

    folder: Path
    port: int

    @property
    def ca(self) -> Path:
        """The CA certificate clients verify the broker with (``kafka.ssl_cafile``)."""
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        """The broker's private key and certificate chain (PEM)."""
        return self.folder / "broker.pem"

    @property
    def client_config(self) -> Path:
        """The monitor's ``kafka`` settings (user, password, CA), readable by its owner only."""
        return self.folder / "client.yaml"

    @property
    def admin_properties(self) -> Path:
        """Java client properties of the super user (for granting ACLs)."""
        return self.folder / "admin.properties"


def _private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise BrokerError(
            "openssl was not found on PATH; it makes the broker's test certificates "
            "(e.g. apt-get install openssl)"
        )
    result = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def make_certificates(folder: Path, subject: str = BROKER_SUBJECT) -> tuple[Path, Path]:
    """A fresh CA (``ca.pem``) and a certificate for 127.0.0.1 and localhost signed by it, with
    its unencrypted PKCS#8 key, in ``broker.pem``. Valid 30 days; the CA's key is deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "basicConstraints=CA:FALSE\n",
        "utf-8",
    )
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=stream-monitor test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
        "-out", "broker.csr", "-subj", f"/CN={subject}",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-out", "broker.crt", "-extfile", "broker.ext",
        cwd=folder,
    )  # fmt: skip
    key = (folder / "broker.key").read_text("utf-8")
    chain = (folder / "broker.crt").read_text("utf-8") + (folder / "ca.pem").read_text("utf-8")
    _private(folder / "broker.pem", key + chain)
    for name in ("ca.key", "ca.srl", "broker.key", "broker.csr", "broker.crt", "broker.ext"):
        (folder / name).unlink(missing_ok=True)
    return folder / "ca.pem", folder / "broker.pem"


def prepare(folder: Path, port: int, controller: int) -> tuple[str, list[str]]:
    """Certificates, passwords and client files in ``folder``; the listener lines of
    server.properties and the StorageTool arguments that create the SCRAM users."""
    setup = SecureSetup(folder, port)
    ca, keystore = make_certificates(folder)
    admin_password = secrets.token_urlsafe(18)
    monitor_password = secrets.token_urlsafe(18)
    listeners = _LISTENERS.format(
        port=port,
        controller=controller,
        mechanism=_MECHANISM,
        admin=ADMIN_USER,
        admin_password=admin_password,
        keystore=keystore,
        ca=ca,
        subject=BROKER_SUBJECT,
    )
    _private(
        setup.admin_properties,
        f"bootstrap.servers=127.0.0.1:{port}\n"
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={_MECHANISM}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN_USER}" password="{admin_password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca}\n",
    )
    _private(
        setup.client_config,
        yaml.safe_dump(
            {
                "kafka": {
                    "bootstrap_servers": f"127.0.0.1:{port}",
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": _MECHANISM,
                    "sasl_username": MONITOR_USER,
                    "sasl_password": monitor_password,
                    "ssl_cafile": str(ca),
                }
            },
            sort_keys=False,
        ),
    )
    users = [
        arg
        for name, password in ((ADMIN_USER, admin_password), (MONITOR_USER, monitor_password))
        for arg in ("--add-scram", f"{_MECHANISM}=[name={name},password={password}]")
    ]
    return listeners, users


def monitor_acls(settings: Settings) -> list[tuple[str, str, str, str]]:
    """What a monitor needs and nothing more, as (resource type, pattern type, name, operation):
    every operation on its topics, on topics named ``<group_id>-...`` (its internal topics and
    the Faust adapter's), on its consumer group and on its transactional ids
    (``<group_id>.<predictions>.<partition>``)."""
    topics = settings.topics
    group = settings.kafka.group_id
    names = [
        topics.predictions,
        topics.labels,
        topics.alerts,
        topics.metrics,
        topics.dead_letters,
        topics.state,
    ]
    return [
        *(("TOPIC", "LITERAL", name, "ALL") for name in dict.fromkeys(names)),
        ("TOPIC", "PREFIXED", f"{group}-", "ALL"),
        ("GROUP", "LITERAL", group, "ALL"),
        ("TRANSACTIONAL_ID", "PREFIXED", f"{group}.", "ALL"),
    ]


def grant(
    java: str, classpath: str, log_config: Path, setup: SecureSetup, settings: Settings
) -> int:
    """Grant ``User:monitor`` the ACLs of ``settings`` as the super user (Kafka's own Admin
    client, run from Grant.java by Java's source launcher); how many were granted."""
    acls = monitor_acls(settings)
    acl_file = setup.folder / "acls.txt"
    acl_file.write_text("".join(" ".join(acl) + "\n" for acl in acls), "utf-8")
    result = subprocess.run(
        [
            java,
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            classpath,
            str(_GRANT),
            str(setup.admin_properties),
            f"User:{MONITOR_USER}",
            str(acl_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise BrokerError(f"granting ACLs failed:\n{(result.stdout + result.stderr)[-1500:]}")
    return len(acls)
