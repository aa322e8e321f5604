"""Generated protobuf/gRPC code for the `peerkit.v1` package (see protos/).

Never edit by hand: regenerate with `python scripts/gen_protos.py`.
The messages are the network's shared vocabulary: every plugin may import them.
"""
