"""ragmesh's Python client: the public gateway API, typed, sync (`Client`) and asyncio
(`AsyncClient`), with deadlines that cover retries, retries that honour the gateway's
`retry-after-ms` hints, streaming Ask, and uploads from a path or a stream.

    from ragmesh_client import Client

    with Client("127.0.0.1:50051", api_key=KEY) as rag:
        job = rag.upload("handbook.pdf", acl=["public"])
        rag.wait_for_job(job.job_id)
        print(rag.ask("How do we rotate the on-call schedule?").answer)
"""

from rag.v1 import gateway_pb2, types_pb2
from ragmesh_client.aio import AsyncClient
from ragmesh_client.channel import TLS, PlaintextRefused
from ragmesh_client.retry import Retry, RetryPolicy
from ragmesh_client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "PlaintextRefused",
    "Retry",
    "RetryPolicy",
    "TLS",
    "gateway_pb2",
    "types_pb2",
]
