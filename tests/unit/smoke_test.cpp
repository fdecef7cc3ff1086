#include <gtest/gtest.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/fp16.h"

TEST(DType, BlockSizesMatchGgml) {
  EXPECT_EQ(px::row_bytes(px::DType::Q8_0, 64), 68u);
  EXPECT_EQ(px::row_bytes(px::DType::Q4_K, 256), 144u);
  EXPECT_THROW(px::row_bytes(px::DType::Q4_0, 33), px::Error);
}
