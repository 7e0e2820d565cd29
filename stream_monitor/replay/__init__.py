"""Record live topics to files and replay files into topics, for load tests and reproductions."""

from stream_monitor.replay.files import BadLineError, Record, encode_record, read_records
from stream_monitor.replay.tools import Pacer, ReplayStats, record_topic, replay_records

__all__ = [
    "BadLineError",
    "Pacer",
    "Record",
    "ReplayStats",
    "encode_record",
    "read_records",
    "record_topic",
    "replay_records",
]
