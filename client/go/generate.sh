#!/usr/bin/env bash
# Generates gen/ (the Go messages and gRPC clients of proto/tributary/v1)
# offline: buf (npm @bufbuild/buf, installed by dev/setup) with buf.gen.yaml
# and two local plugins, pinned as tools of the module in tools/ (go.mod and
# go.sum there) and installed with `go install tool` into
# ~/.cache/tributary/go-plugins/<versions>/ from the Go module cache (which
# dev/setup fills; nothing is downloaded once it has):
#   protoc-gen-go       google.golang.org/protobuf, the same version as the
#                       runtime in go.mod (checked here), so the generated
#                       code matches the library it runs on;
#   protoc-gen-go-grpc  google.golang.org/grpc/cmd/protoc-gen-go-grpc.
#
#   client/go/generate.sh            regenerate gen/
#   client/go/generate.sh --check    exit 1 when gen/ is not what it would
#                                    generate from proto/ now (writes nothing)
#   client/go/generate.sh --plugins  only install the plugins (dev/setup)
set -euo pipefail
cd "$(dirname "$0")"

version() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }
runtime=$(version . google.golang.org/protobuf)
protoc_gen_go=$(version tools google.golang.org/protobuf)
protoc_gen_go_grpc=$(version tools google.golang.org/grpc/cmd/protoc-gen-go-grpc)
if [ "$runtime" != "$protoc_gen_go" ]; then
  echo "protoc-gen-go $protoc_gen_go (tools/go.mod) differs from the protobuf runtime $runtime (go.mod): align them" >&2
  exit 2
fi
bin="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/go-plugins/protoc-gen-go-$protoc_gen_go-grpc-$protoc_gen_go_grpc"
if [ ! -x "$bin/protoc-gen-go" ] || [ ! -x "$bin/protoc-gen-go-grpc" ]; then
  mkdir -p "$bin"
  (cd tools && GOBIN="$bin" go install tool)
fi
export PATH="$bin:$PATH"

case "${1:-}" in
  --plugins)
    echo "protoc-gen-go $protoc_gen_go and protoc-gen-go-grpc $protoc_gen_go_grpc are in $bin"
    ;;
  --check)
    if ! command -v buf >/dev/null 2>&1; then
      echo "buf is not installed (dev/setup installs it from npm @bufbuild/buf)" >&2
      exit 2
    fi
    temp=$(mktemp -d "${TMPDIR:-/tmp}/tributary-go-gen.XXXXXX")
    trap 'rm -rf "$temp"' EXIT
    buf generate --template buf.gen.yaml --output "$temp"
    if ! diff -r "$temp/gen" gen >"$temp/diff"; then
      echo "client/go/gen is out of date with proto/; run client/go/generate.sh:" >&2
      head -50 "$temp/diff" >&2
      exit 1
    fi
    echo "client/go/gen is up to date ($(find gen -type f | wc -l) files)"
    ;;
  "")
    buf generate --template buf.gen.yaml
    ;;
  *)
    echo "usage: $0 [--check|--plugins]" >&2
    exit 2
    ;;
esac
