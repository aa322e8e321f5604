# One peerkit node per container. Mount its config at /config/node.toml and
# its data at /data; publish the REST and gRPC ports for other hosts.
#
# Debian's own Python 3.11 in a venv, built in one stage and copied into a
# slim runtime without compilers or pip caches. Checked end to end by
# deploy/docker-smoke.sh (three peers, a locate and a verified download).
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/peerkit
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY plugins plugins
COPY cli cli
COPY protos protos
RUN /opt/peerkit/bin/pip install --no-cache-dir .

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/peerkit /opt/peerkit
ENV PATH=/opt/peerkit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    # Listen on every interface inside the container; `advertise` in the config
    # (or PEERKIT_NODE_ADVERTISE) says how other hosts reach this node.
    PEERKIT_NODE_HOST=0.0.0.0
WORKDIR /data
EXPOSE 5001 50051
# Healthy when the REST port answers at all: a 401 from a token-protected node counts.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s CMD python3 -c "import http.client as h; \
c = h.HTTPConnection('127.0.0.1', 5001, timeout=2); c.request('GET', '/api/v1/status'); c.getresponse()" || exit 1
ENTRYPOINT ["peerkit"]
CMD ["node", "run", "-c", "/config/node.toml"]
