// libFuzzer entry point for the safetensors parser: any input must either parse or throw
// px::Error. Built by `make fuzz` (README.md), not part of the ctest suite. Headers are JSON;
// the seeds (fuzz_seed_corpus) get the fuzzer past the parser's first checks.
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
