#!/usr/bin/env bash
# libFuzzer targets for the parsers that read untrusted bytes (issue 18): `make fuzz`.
#
#   Tests/Fuzz/fuzz.sh [target ...]       # default: every target below
#   FUZZ_SECONDS=600 Tests/Fuzz/fuzz.sh decoders
#
# Each target is one small Swift file in Tests/Fuzz/targets/ that defines
# LLVMFuzzerTestOneInput. It is compiled with `swiftc -sanitize=fuzzer,address`
# together with the ReindexKit source files it needs (listed below), so no
# package manifest or build product of the main build is involved: the
# fuzzer binary is the parser and nothing else. Yams (for the job file) is
# compiled from SwiftPM's checkout, its C part (libyaml) with clang.
#
# Seeds: Tests/Fuzz/corpus/<target>/ (committed, small). Each run copies them
# to .build/fuzz/corpus/<target>/, where libFuzzer keeps what it finds, and
# runs for FUZZ_SECONDS (default 60). A crash leaves its input in
# .build/fuzz/artifacts/ and makes this script exit 1: turn it into a
# regression test in Tests/ReindexKitTests, fix, and commit the input to the
# target's corpus.
#
# Adding a target (the chunker's goes here): write Tests/Fuzz/targets/<name>.swift,
# add `<name>` to TARGETS and its source files to a SOURCES_<name> variable,
# and commit a few seeds under Tests/Fuzz/corpus/<name>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

SWIFTC=${SWIFTC:-swiftc}
CLANG=${CLANG:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=.build/fuzz
K=Sources/ReindexKit

TARGETS=(fastjson decoders base64 jobconfig)
# (chunker: reserved for the chunker's target, added with it)

# What the decoders need: the clients' files reference the transport and the model config.
DECODER_SOURCES=(
  $K/Errors/ReindexError.swift $K/Errors/ExitCodes.swift
  $K/Embedding/FastJSON.swift $K/Embedding/Endpoint.swift $K/Embedding/EmbeddingClient.swift
  $K/Embedding/OpenAIEmbeddingClient.swift $K/Embedding/OpenAIEmbeddingRequest.swift
  $K/Embedding/OllamaEmbeddingClient.swift $K/Embedding/OllamaEmbedRequest.swift
  $K/Embedding/TEIEmbeddingClient.swift $K/Embedding/TEIEmbedRequest.swift $K/Embedding/TEIInfo.swift $K/Embedding/VectorListAnswer.swift
  $K/System/HTTPTransport.swift $K/System/FilePermissions.swift $K/System/FileOps.swift
  $K/Job/ModelConfig.swift $K/Job/ManagedServerConfig.swift $K/Job/YAMLReader.swift $K/Job/JobConfig.swift $K/Job/AttributeSpec.swift
)
SOURCES_fastjson=("${DECODER_SOURCES[@]}")
SOURCES_decoders=("${DECODER_SOURCES[@]}")
SOURCES_base64=("${DECODER_SOURCES[@]}")
SOURCES_jobconfig=("${DECODER_SOURCES[@]}")

if [ $# -gt 0 ]; then TARGETS=("$@"); fi
mkdir -p "$OUT/yams" "$OUT/corpus" "$OUT/artifacts"

# Yams from SwiftPM's checkout (the version Package.resolved pins).
if [ ! -d .build/checkouts/Yams ]; then swift package resolve; fi
YAMS=.build/checkouts/Yams/Sources
if [ ! -f "$OUT/yams/libYams.a" ] || [ "$OUT/yams/libYams.a" -ot Package.resolved ]; then
  echo "== building Yams for the fuzzers"
  rm -f "$OUT"/yams/*.o
  for c in "$YAMS"/CYaml/src/*.c; do
    "$CLANG" -c -O1 -g -fsanitize=fuzzer-no-link,address -DYAML_DECLARE_STATIC -I "$YAMS/CYaml/include" "$c" -o "$OUT/yams/$(basename "$c" .c).o"
  done
  "$SWIFTC" -parse-as-library -module-name Yams -emit-module -emit-module-path "$OUT/yams/Yams.swiftmodule" \
    -emit-library -static -o "$OUT/yams/libYams.a" -sanitize=fuzzer,address -O -D SWIFT_PACKAGE \
    -Xcc -DYAML_DECLARE_STATIC -I "$YAMS/CYaml/include" "$YAMS"/Yams/*.swift
  ar rcs "$OUT/yams/libYams.a" "$OUT"/yams/*.o
fi

status=0
for t in "${TARGETS[@]}"; do
  src="Tests/Fuzz/targets/$t.swift"
  [ -f "$src" ] || { echo "no fuzz target $src" >&2; exit 2; }
  var="SOURCES_$t[@]"
  bin="$OUT/fuzz-$t"
  echo "== building $bin"
  "$SWIFTC" -parse-as-library -module-name ReindexFuzz -sanitize=fuzzer,address -O -g \
    -I Sources/CCurl -I Sources/CStatfs -I "$OUT/yams" -Xcc -DYAML_DECLARE_STATIC -I "$YAMS/CYaml/include" \
    "${!var}" "$src" "$OUT/yams/libYams.a" -lcurl -o "$bin" 2> >(grep -v "Cannot export local symbol" >&2)
  corpus="$OUT/corpus/$t"
  mkdir -p "$corpus"
  cp -n Tests/Fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "== fuzzing $t for ${FUZZ_SECONDS}s ($(ls "$corpus" | wc -l) inputs to start)"
  # The Swift runtime's backtracer would catch the trap before libFuzzer can report it.
  if ! SWIFT_BACKTRACE=enable=no "$bin" "$corpus" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t-" 2> "$OUT/$t.log"; then
    echo "!! $t: crash; input and log: $OUT/artifacts/$t-*, $OUT/$t.log" >&2
    tail -n 40 "$OUT/$t.log" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$t.log" | sed "s/^/   $t /" || true
  echo "   $t corpus: $(ls "$corpus" | wc -l) inputs"
done
exit $status
