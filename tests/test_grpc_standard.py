"""Standard gRPC tooling works against a node: health checks and server reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from support.nodes import running_node


async def test_health_check_is_serving(tmp_path):
    async with running_node(tmp_path, plugins=["grpc_transfer"]) as node:
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", "peerkit.v1.Transfer"):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_transfer_service(tmp_path):
    async with running_node(tmp_path, plugins=["grpc_transfer"]) as node:
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask():
                yield reflection_pb2.ServerReflectionRequest(list_services="")
                yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="peerkit.v1.Transfer")

            replies = [r async for r in stub.ServerReflectionInfo(ask(), timeout=5)]
        names = {s.name for s in replies[0].list_services_response.service}
        assert {"peerkit.v1.Transfer", "peerkit.v1.Link", "grpc.health.v1.Health"} <= names
        assert replies[1].file_descriptor_response.file_descriptor_proto  # grpcurl can describe it


async def test_with_a_token_reflection_needs_it_and_health_does_not(tmp_path):
    async with running_node(tmp_path, plugins=["grpc_transfer"], security={"token": "t0ken"}) as node:
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            async def ask():
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                [r async for r in stub.ServerReflectionInfo(ask(), timeout=5)]
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            replies = [r async for r in stub.ServerReflectionInfo(ask(), timeout=5, metadata=(("authorization", "Bearer t0ken"),))]
            assert replies[0].list_services_response.service
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "method,kind",
    [
        ("/peerkit.v1.Transfer/Stat", "unary_unary"),
        ("/peerkit.v1.Transfer/Download", "unary_stream"),
        ("/peerkit.v1.Transfer/Upload", "stream_unary"),
        ("/peerkit.v1.Echo/Upload", "stream_unary"),
        ("/peerkit.v1.Link/Call", "unary_unary"),
    ],
)
async def test_undecodable_requests_are_invalid_argument(tmp_path, caplog, method, kind):
    """Bytes that are no protobuf message: INVALID_ARGUMENT with a reason, no traceback in the node's log."""
    garbage = b"\xff\xff\xff\xff\x0f"
    async with running_node(tmp_path, plugins=["grpc_transfer", "echo"]) as node:
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            call = getattr(channel, kind)(method)  # no serializers: raw bytes go out as they are
            with pytest.raises(grpc.aio.AioRpcError) as err:
                if kind == "unary_unary":
                    await call(garbage, timeout=5)
                elif kind == "unary_stream":
                    async for _ in call(garbage, timeout=5):
                        pass
                else:
                    async def messages():
                        yield garbage

                    await call(messages(), timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "malformed request message" in err.value.details()
            # and the node still answers properly formed calls
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "Traceback" not in caplog.text and "Unexpected" not in caplog.text
