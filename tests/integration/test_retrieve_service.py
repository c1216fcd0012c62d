"""The retrieve service in-process against a real nats-server and the real embed service: an index
generation is bound to the embedding model that built it; a stop while warming up ends the warm-up."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from helpers import embed_service, free_port_block, serving

from rag.v1 import embed_pb2, embed_pb2_grpc, events_pb2, retrieve_pb2, retrieve_pb2_grpc, types_pb2
from services.common import natsio
from services.common.config import RetrieveSettings
from services.common.ids import chunk_id
from services.common.tokenizer import packaged_model_path
from services.retrieve.server import RetrieveService


async def model_info(addr: str) -> embed_pb2.GetModelInfoResponse:
    async with grpc.aio.insecure_channel(addr) as channel:
        return await embed_pb2_grpc.EmbedServiceStub(channel).GetModelInfo(embed_pb2.GetModelInfoRequest())


async def test_a_query_from_another_model_than_the_generations_is_failed_precondition(nats_server, tmp_path):
    nc = await natsio.connect(nats_server.url, "test")
    js = nc.jetstream()
    await natsio.ensure_all(js)

    def settings(embed_addr: str, port: int) -> RetrieveSettings:
        return RetrieveSettings(
            grpc_port=port, nats_url=nats_server.url, embed_addr=embed_addr, data_dir=tmp_path, drain_seconds=1
        )

    async with embed_service() as built_with:
        model = await model_info(built_with)
        chunk = types_pb2.Chunk(
            chunk_id=chunk_id("t1", "d1", 1, 0), tenant="t1", doc_id="d1", version=1, text="Otters hold hands."
        )
        vector = np.ones(model.dimension, dtype=np.float32) / np.sqrt(model.dimension)
        upsert = events_pb2.IndexBatch(
            tenant="t1",
            doc_id="d1",
            embedding_model_id=model.model_id,
            upserts=events_pb2.ChunkUpserts(chunks=[chunk], vectors=vector.tolist(), dimension=model.dimension),
        )
        activate = events_pb2.IndexBatch(
            tenant="t1",
            doc_id="d1",
            embedding_model_id=model.model_id,
            activate=events_pb2.ActivateVersion(version=1, chunk_count=1),
        )
        for event in (upsert, activate):
            await natsio.publish(js, "rag.index.t1", event.SerializeToString())
        port = free_port_block(1)
        async with serving(RetrieveService(settings(built_with, port)), port) as addr:
            async with grpc.aio.insecure_channel(addr) as channel:
                stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
                request = retrieve_pb2.RetrieveRequest(tenant="t1", query="otters", top_k=3)
                for _ in range(100):
                    response = await stub.Retrieve(request)
                    if response.hits:
                        break
                    await asyncio.sleep(0.1)
                assert response.hits[0].chunk.doc_id == "d1" and response.generation == 1

    async with embed_service(model_path=packaged_model_path(), model_name="another-model") as other:
        assert (await model_info(other)).model_id != model.model_id
        port = free_port_block(1)
        async with serving(RetrieveService(settings(other, port)), port) as addr:
            async with grpc.aio.insecure_channel(addr) as channel:
                stub = retrieve_pb2_grpc.RetrieveServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await stub.Retrieve(retrieve_pb2.RetrieveRequest(tenant="t1", query="otters", top_k=3))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "another-model@" in error.value.details() and model.model_id in error.value.details()
    assert "index generation 1" in error.value.details()
    await natsio.close(nc)


def test_a_stop_while_warming_up_ends_the_warm_up(tmp_path):
    """SIGTERM to a service still waiting for what it needs (here an embed service that never
    answers) stops it instead of waiting for the warm-up to finish."""
    base = free_port_block(4)
    env = {
        **os.environ,
        "RAGMESH_GRPC_PORT": str(base),
        "RAGMESH_EMBED_ADDR": f"127.0.0.1:{base + 1}",  # nothing listens there
        "RAGMESH_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.retrieve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # listening, then waiting for embed
            if '"listening"' in line:
                break
        time.sleep(1)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped while starting" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
