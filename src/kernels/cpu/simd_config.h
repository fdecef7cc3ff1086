#pragma once
// Highway target selection shared by every SIMD translation unit of the kernels; include it
// before any hwy header so all of them compile (and tests enumerate) the same targets.
//
// x86: SSE4 (16-byte vectors, the same code path as Arm NEON), AVX2, AVX-512 (AVX3) and
// AVX-512 with VNNI/VBMI (AVX3_DL). SSSE3 is left out to save a compilation of every kernel.
// The portable fallback is HWY_SCALAR with GCC < 12.3 (Highway marks EMU128 broken there);
// the kernels implement that target with the plain C++ of matmul_scalar.cpp.
// Arm: NEON. The scalable-vector targets (SVE, RVV) are left out because the kernels keep
// small arrays of vectors, which sizeless SVE/RVV vector types do not allow.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
