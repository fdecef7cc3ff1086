// libFuzzer entry point for the safetensors parser: any input must either parse or throw
// px::Error. Built by hand like gguf_fuzz.cpp, not part of the ctest suite:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     tests/fuzz/safetensors_fuzz.cpp src/model/safetensors.cpp src/model/hf_json.cpp \
//     src/core/dtype.cpp src/core/mapped_file.cpp -lfmt -o /tmp/safetensors_fuzz
//   /tmp/safetensors_fuzz -max_len=4096 -rss_limit_mb=2048 -max_total_time=300 /tmp/st_corpus
// (seed the corpus with small files from SafetensorsWriter; headers are JSON, so
// -dict with the format's keys and dtypes helps the fuzzer get past the parser).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = px::SafetensorsFile::parse(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    // Touch what a loader would touch, so the sanitizers check the validated bounds.
    volatile uint8_t sink = 0;
    for (const px::SafetensorsTensor& t : file->tensors()) {
      const auto bytes = file->data(t);
      if (!bytes.empty()) sink = sink ^ bytes.front() ^ bytes.back();
      (void)file->find(t.name);
    }
  } catch (const px::Error&) {
    // Rejecting a malformed file is the expected outcome.
  }
  return 0;
}
