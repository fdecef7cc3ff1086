// libFuzzer entry point for the GGUF parser: any input must either parse or throw
// px::Error. Built by `make fuzz` (README.md), not part of the ctest suite.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "model/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = px::GgufFile::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    // Touch what a loader would touch, so the sanitizers check the validated bounds.
    volatile uint8_t sink = 0;
    for (const px::GgufTensorInfo& t : file->tensors()) {
      const uint8_t* bytes = file->tensor_data(t);
      sink = sink ^ bytes[0] ^ bytes[t.n_bytes - 1];
      (void)file->find_tensor(t.name);
    }
    for (const px::GgufKeyValue& kv : file->metadata()) {
      (void)file->find(kv.key);
      (void)kv.value.array_size();
    }
  } catch (const px::Error&) {
    // Rejecting a malformed file is the expected outcome.
  }
  return 0;
}
