# One peerkit node per container. Mount its config at /config/node.toml and
# its data at /data; publish the REST and gRPC ports for other hosts.
FROM python:3.11-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY plugins plugins
COPY cli cli
COPY protos protos
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /data
# Listen on every interface inside the container; `advertise` in the config
# (or PEERKIT_NODE_ADVERTISE) says how other hosts reach this node.
ENV PEERKIT_NODE_HOST=0.0.0.0
EXPOSE 5001 50051
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5001/api/v1/status', timeout=2)" || exit 1
ENTRYPOINT ["peerkit"]
CMD ["node", "run", "-c", "/config/node.toml"]
