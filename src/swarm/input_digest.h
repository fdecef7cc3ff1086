#pragma once
// What a stage reports of the rows it received (StageReport::input_digest): their SHA-256, so
// that a head rebuilding that input (from a replay's rows, or from its own recompute, rounded as
// each wire dtype rounds) knows when it has it bit for bit — and can then hold the stage to the
// strict check — and cannot be fooled into judging from rows another peer made up.
#include <cstdint>
#include <span>
#include <vector>

namespace px::swarm {

inline constexpr size_t kInputDigestBytes = 32;

// SHA-256 of `rows` as f32 little-endian.
std::vector<uint8_t> input_digest(std::span<const float> rows);

}  // namespace px::swarm
