#pragma once
// Hidden rows as 8-bit integers (--wire-dtype q8): each row is cut into blocks of 32 values (the
// last one shorter when the width is not a multiple of 32), and each block is sent as its scale
// d = max|x| / 127 in f16, then round(x / d) as int8 — 34 bytes per 32 values, 0.27x of f32.
// Per block rather than per row because hidden states carry a few outlier dimensions hundreds
// of times larger than the rest: one scale per row would round every other value to zero.
// Decoding gives q * d: an error of at most d / 2 per value (plus the scale's f16 rounding).
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace px::swarm {

inline constexpr int kQ8BlockValues = 32;

// Bytes of one row of `width` values.
size_t q8_row_bytes(int width);

// `rows` [n, width] -> the wire form. Saturates: |values| beyond 127 x 65504 (the largest f16
// scale) clamp there, an infinity too, and a NaN is sent as 0 (nothing honest sends either).
void q8_encode(std::span<const float> rows, int width, std::string& out);

// The wire form -> f32 rows. Throws px::Error for a size that is not whole rows, or a block
// scale that is negative or not finite (a hostile or broken peer).
void q8_decode(std::string_view bytes, int width, std::vector<float>& out);

// What a q8 link delivers of `rows` (encode then decode): what the verifier rebuilds.
std::vector<float> q8_round_trip(std::span<const float> rows, int width);

}  // namespace px::swarm
