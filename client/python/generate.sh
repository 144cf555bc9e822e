#!/usr/bin/env bash
# Regenerates the Python modules of proto/tributary/v1/*.proto into
# src/tributary/v1/ (or into the directory given as $1) with grpcio-tools:
# messages (*_pb2.py), their type stubs (*_pb2.pyi) and the gRPC stubs
# (*_pb2_grpc.py). The google/protobuf well-known types are not generated:
# they come from the protobuf runtime.
#
# The output depends on the grpcio-tools version (it embeds the protoc and
# grpc versions and checks them against the runtime at import), so use the
# one pinned in requirements.txt; tests/test_generated.py fails when the
# checked-in modules differ from what this script produces.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/src}"
mkdir -p "$out"
cd "$root/proto"
python3 -m grpc_tools.protoc -I. \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  tributary/v1/event.proto tributary/v1/ingest.proto tributary/v1/query.proto
