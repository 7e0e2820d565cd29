"""What the service tells operators: Prometheus metrics, health and readiness over HTTP."""

from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.observability.server import auth_middleware, start_worker_endpoints

__all__ = ["WorkerMetrics", "auth_middleware", "start_worker_endpoints"]
