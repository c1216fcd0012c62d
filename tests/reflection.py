"""Server reflection as grpcurl uses it: list the services, then resolve a method's descriptor."""

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def reflect(addr: str, method: str) -> tuple[set[str], list[str]]:
    """(service names the server lists, input and output type of `method` = "pkg.Service/Method")."""
    service, name = method.split("/")
    with grpc.insecure_channel(addr) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        found = DescriptorPool(database).FindServiceByName(service).methods_by_name[name]
        return services, [found.input_type.full_name, found.output_type.full_name]
