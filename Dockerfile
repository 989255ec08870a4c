# blockwatch daemon image. Not built by CI (no container engine there); kept standard.
#   docker build -t blockwatch .
#   docker run -v blockwatch-data:/data blockwatch
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[postgres,server]"
COPY probes ./probes
COPY config ./config

RUN useradd --system --uid 10001 --home-dir /data --create-home blockwatch
USER blockwatch
WORKDIR /data
VOLUME ["/data"]
ENV BLOCKWATCH_CONFIG=/app/config/blockwatch.docker.toml
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5m --timeout=30s CMD ["blockwatch", "health"]
CMD ["blockwatch", "run"]
