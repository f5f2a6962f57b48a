"""gunicorn settings of the production image (`gunicorn -c deploy/gunicorn.conf.py config.wsgi`).

Everything here has an environment override, so a deployment tunes the web server without a
new image. Another WSGI server (granian, issue 15) only needs a different `command:` for the
`web` service in docker-compose.yml; the metrics' multiprocess directory works with any
pre-fork server that marks dead workers as below.
"""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")  # inside the container, behind the proxy  # nosec B104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
worker_class = "gthread"
keepalive = int(os.environ.get("WEB_KEEPALIVE", "75"))  # above the proxy's idle timeout
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
# Only the proxy talks to gunicorn; it sets X-Forwarded-* and the app reads them through
# TRUSTED_PROXY_COUNT (core/net.py), not through gunicorn.
forwarded_allow_ips = ""


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges leave the metrics (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
