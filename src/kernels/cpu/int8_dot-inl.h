// Integer dot-product building blocks for the quantized kernels, per Highway target.
// Included once per target from the kernels' translation units (no include guard on
// purpose: Highway's per-target toggle below).
#if defined(PX_KERNELS_INT8_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PX_KERNELS_INT8_DOT_INL_H_
#undef PX_KERNELS_INT8_DOT_INL_H_
#else
#define PX_KERNELS_INT8_DOT_INL_H_
#endif

#include <hwy/highway.h>

#include "core/fp16.h"

#if HWY_TARGET != HWY_SCALAR  // HWY_SCALAR uses matmul_scalar.cpp instead
HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Integer vectors are 32 bytes where the target has 256-bit integer ops (one Q8_0/Q4_0
// block or one Q4_K sub-block per vector) and 16 bytes elsewhere. Wider vectors would
// straddle the 16/32-element scale groups, which costs more shuffles than it saves.
#undef PX_X86_256
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define PX_X86_256 1
constexpr size_t kQBytes = 32;
#else
#define PX_X86_256 0
constexpr size_t kQBytes = 16;
#endif

using QU8 = hn::FixedTag<uint8_t, kQBytes>;
using QI8 = hn::FixedTag<int8_t, kQBytes>;
using QI16 = hn::FixedTag<int16_t, kQBytes / 2>;
using QI32 = hn::FixedTag<int32_t, kQBytes / 4>;
using QF32 = hn::FixedTag<float, kQBytes / 4>;

// Lane i of the result is a[2i]*b[2i] + a[2i+1]*b[2i+1], a unsigned, b signed. Callers keep
// a <= 128 and |b| <= 127 so the sum fits in int16 (x86 would saturate, others wrap).
HWY_INLINE hn::Vec<QI16> MulPairsU8I8(hn::Vec<QU8> a, hn::Vec<QI8> b) {
#if PX_X86_256
  return hn::Vec<QI16>{_mm256_maddubs_epi16(a.raw, b.raw)};
#else
  const QI16 d16;
  const hn::RebindToUnsigned<QI16> du16;
  const auto a16 = hn::BitCast(du16, a);
  const auto a_even = hn::BitCast(d16, hn::And(a16, hn::Set(du16, 0xFF)));
  const auto a_odd = hn::BitCast(d16, hn::ShiftRight<8>(a16));
  const auto b16 = hn::BitCast(d16, b);
  const auto b_even = hn::ShiftRight<8>(hn::ShiftLeft<8>(b16));  // arithmetic: sign-extends
  const auto b_odd = hn::ShiftRight<8>(b16);
  return hn::Add(hn::Mul(a_even, b_even), hn::Mul(a_odd, b_odd));
#endif
}

// Lane i of the result is a[2i]*b[2i] + a[2i+1]*b[2i+1] in int32 (exact).
HWY_INLINE hn::Vec<QI32> MulPairsI16(hn::Vec<QI16> a, hn::Vec<QI16> b) {
#if PX_X86_256
  return hn::Vec<QI32>{_mm256_madd_epi16(a.raw, b.raw)};
#else
  const QI32 d32;
  const auto a32 = hn::BitCast(d32, a), b32 = hn::BitCast(d32, b);
  const auto a_even = hn::ShiftRight<16>(hn::ShiftLeft<16>(a32));
  const auto b_even = hn::ShiftRight<16>(hn::ShiftLeft<16>(b32));
  return hn::Add(hn::Mul(a_even, b_even), hn::Mul(hn::ShiftRight<16>(a32), hn::ShiftRight<16>(b32)));
#endif
}

// acc + products a*b of signed bytes, each int32 lane taking 4 adjacent products; the lane
// total is exact for |b| <= 127 (a may be -128).
HWY_INLINE hn::Vec<QI32> DotI8(hn::Vec<QI32> acc, hn::Vec<QI8> a, hn::Vec<QI8> b) {
  const QI16 d16;
#if HWY_TARGET == HWY_AVX3_DL
  // AVX512-VNNI multiplies unsigned by signed bytes and adds groups of 4 into int32 in one
  // instruction: |a| * (b with a's sign) is the same product. Written as asm because the
  // assembler's default for this mnemonic is the EVEX (AVX512-VNNI) encoding, which every
  // AVX3_DL CPU has, while compilers may pick the VEX (AVX-VNNI) form, which some lack.
  (void)d16;
  __m256i sum = acc.raw;
  const __m256i abs_a = _mm256_abs_epi8(a.raw), signed_b = _mm256_sign_epi8(b.raw, a.raw);
  asm("vpdpbusd %2, %1, %0" : "+v"(sum) : "v"(abs_a), "v"(signed_b));
  return hn::Vec<QI32>{sum};
#elif PX_X86_256
  // maddubs wants an unsigned operand: |a| * (b with a's sign) is the same product.
  const hn::Vec<QU8> abs_a{_mm256_abs_epi8(a.raw)};
  const hn::Vec<QI8> signed_b{_mm256_sign_epi8(b.raw, a.raw)};
  return hn::Add(acc, MulPairsI16(MulPairsU8I8(abs_a, signed_b), hn::Set(d16, 1)));
#else
  const auto a16 = hn::BitCast(d16, a), b16 = hn::BitCast(d16, b);
  const auto even = hn::Mul(hn::ShiftRight<8>(hn::ShiftLeft<8>(a16)),
                            hn::ShiftRight<8>(hn::ShiftLeft<8>(b16)));
  const auto odd = hn::Mul(hn::ShiftRight<8>(a16), hn::ShiftRight<8>(b16));
  return hn::Add(acc, MulPairsI16(hn::Add(even, odd), hn::Set(d16, 1)));
#endif
}

// acc + products a*b of unsigned by signed bytes, each int32 lane taking 4 adjacent
// products; exact for a <= 128, |b| <= 127.
HWY_INLINE hn::Vec<QI32> DotU8I8(hn::Vec<QI32> acc, hn::Vec<QU8> a, hn::Vec<QI8> b) {
#if HWY_TARGET == HWY_AVX3_DL
  __m256i sum = acc.raw;  // see DotI8 for why this is asm
  asm("vpdpbusd %2, %1, %0" : "+v"(sum) : "v"(a.raw), "v"(b.raw));
  return hn::Vec<QI32>{sum};
#else
  return hn::Add(acc, MulPairsI16(MulPairsU8I8(a, b), hn::Set(QI16(), 1)));
#endif
}

// Low and high nibbles of bytes, as unsigned bytes 0..15.
HWY_INLINE hn::Vec<QU8> LowNibbles(hn::Vec<QU8> v) { return hn::And(v, hn::Set(QU8(), 0x0F)); }
// Shifts the bytes of v as 16-bit lanes (bits cross into the neighbouring byte, so callers
// mask afterwards): one instruction, where a byte shift costs a shift and a mask.
template <int kBits>
HWY_INLINE hn::Vec<QU8> ShiftLeftWide(hn::Vec<QU8> v) {
  const hn::Repartition<uint16_t, QU8> du16;
  return hn::BitCast(QU8(), hn::ShiftLeft<kBits>(hn::BitCast(du16, v)));
}
template <int kBits>
HWY_INLINE hn::Vec<QU8> ShiftRightWide(hn::Vec<QU8> v) {
  const hn::Repartition<uint16_t, QU8> du16;
  return hn::BitCast(QU8(), hn::ShiftRight<kBits>(hn::BitCast(du16, v)));
}
HWY_INLINE hn::Vec<QU8> HighNibbles(hn::Vec<QU8> v) {
  return hn::And(ShiftRightWide<4>(v), hn::Set(QU8(), 0x0F));
}

inline float HalfToFloat(uint16_t h) {
#if PX_X86_256
  return _cvtsh_ss(h);
#else
  return fp16_to_f32(h);
#endif
}

}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // HWY_TARGET != HWY_SCALAR

#endif  // include guard toggle
