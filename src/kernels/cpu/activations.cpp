// SIMD rounding of activations to int8 blocks (see activations.h).
#include "kernels/cpu/activations.h"

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul_scalar.h"
#include "kernels/cpu/simd_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/activations.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace px::HWY_NAMESPACE {
#if HWY_TARGET == HWY_SCALAR
void QuantizeActivationRow(const float* x, int64_t cols, int64_t block, int8_t* q,
                           float* scales, int16_t* sums16) {
  kernels::scalar::quantize_activation_row(x, cols, block, q, scales, sums16);
}
#else
namespace hn = hwy::HWY_NAMESPACE;

// One token row: per block amax, scale = amax / 127, q = NearestInt(x * (1 / scale)).
void QuantizeActivationRow(const float* x, int64_t cols, int64_t block, int8_t* q,
                           float* scales, int16_t* sums16) {
  // At most 16 floats per vector, so a 32-element block is a whole number of vectors.
  const hn::CappedTag<float, 16> df;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t b = 0; b < cols; b += block) {
    auto vmax = hn::Zero(df);
    for (int64_t i = b; i < b + block; i += n) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + i)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    scales[b / block] = scale;
    const auto vinv = hn::Set(df, inv);
    for (int64_t i = b; i < b + block; i += n) {
      const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), vinv));
      hn::StoreU(hn::DemoteTo(di8, qi), di8, q + i);
    }
  }
  for (int64_t g = 0; g < cols / 16; ++g) {
    int sum = 0;
    for (int k = 0; k < 16; ++k) sum += q[g * 16 + k];
    sums16[g] = static_cast<int16_t>(sum);
  }
}

#endif  // HWY_TARGET == HWY_SCALAR
}  // namespace px::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace px {
HWY_EXPORT(QuantizeActivationRow);

void QuantizedActivations::quantize(ActFormat format, const float* x, int64_t n_tokens,
                                    int64_t cols, ThreadPool* pool) {
  const int64_t block = act_block_size(format);
  if (cols % block != 0) {
    fail("activation row of {} elements is not a multiple of the block size {}", cols, block);
  }
  format_ = format;
  n_tokens_ = n_tokens;
  cols_ = cols;
  const auto grow = [](auto& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  };
  grow(q_, n_tokens * cols);
  grow(scales_, n_tokens * (cols / block));
  grow(sums16_, n_tokens * (cols / 16));
  const auto rows = [this, x, cols, block](int64_t t_begin, int64_t t_end) {
    for (int64_t t = t_begin; t < t_end; ++t) {
      HWY_DYNAMIC_DISPATCH(QuantizeActivationRow)(x + t * cols, cols, block, q_.data() + t * cols,
                                                  scales_.data() + t * (cols / block),
                                                  sums16_.data() + t * (cols / 16));
    }
  };
  // A token row takes ~1 us: only batches are worth waking the pool for.
  if (pool && n_tokens >= 16) {
    const auto* job = &rows;
    pool->parallel_for(n_tokens, 4, [job](int64_t b, int64_t e) { (*job)(b, e); });
  } else {
    rows(0, n_tokens);
  }
}

}  // namespace px
#endif  // HWY_ONCE
