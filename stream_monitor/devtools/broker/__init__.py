"""Development brokers: a real Apache Kafka from Maven jars, or the embedded Tansu binary."""

from stream_monitor.devtools.broker.apache import DEFAULT_KAFKA_VERSION, ensure_jars, start_kafka
from stream_monitor.devtools.broker.process import BrokerInfo, restart, running_brokers, stop
from stream_monitor.devtools.broker.tansu import start_tansu

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerInfo",
    "ensure_jars",
    "restart",
    "running_brokers",
    "start_kafka",
    "start_tansu",
    "stop",
]
