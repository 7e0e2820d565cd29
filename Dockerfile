# stream-monitor's image: the worker, the dashboard and every command (`stream-monitor --help`).
#   docker build -t stream-monitor .        docker run --rm stream-monitor --version
#
# Stage 1 builds the wheel, native core included (Rust, maturin); stage 2 installs it on a slim
# Python with no compiler, and runs as an unprivileged user.

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain 1.85
ENV PATH="/root/.cargo/bin:${PATH}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE* ./
COPY native ./native
COPY stream_monitor ./stream_monitor
RUN pip install --no-cache-dir "maturin>=1.9,<2" \
    && maturin build --release --out /wheels

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl "confluent-kafka>=2.6" "psycopg[binary]>=3.2" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 monitor
USER monitor
WORKDIR /home/monitor
ENV STREAM_MONITOR_ENV=prod
# The worker's endpoints (/metrics, /healthz, /readyz) and the dashboard.
EXPOSE 9400 8050
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('STREAM_MONITOR_HTTP__PORT', '9400') + '/healthz', timeout=4)"]
ENTRYPOINT ["stream-monitor"]
CMD ["run"]
