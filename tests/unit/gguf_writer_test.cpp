// GgufWriter -> GgufFile round trips, plus the writer's own argument checks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"

namespace px {
namespace {

class GgufWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/gguf_writer_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

GgufValue scalar(GgufType type) {
  GgufValue v;
  v.type = type;
  return v;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no px::Error thrown)";
}

TEST_F(GgufWriterTest, RoundTripsEveryScalarType) {
  GgufWriter w;
  GgufValue u8 = scalar(GgufType::UINT8);
  u8.uint_value = 200;
  GgufValue i8 = scalar(GgufType::INT8);
  i8.int_value = -100;
  GgufValue u16 = scalar(GgufType::UINT16);
  u16.uint_value = 60000;
  GgufValue i16 = scalar(GgufType::INT16);
  i16.int_value = -30000;
  GgufValue i64 = scalar(GgufType::INT64);
  i64.int_value = -(int64_t{1} << 50);
  GgufValue f64 = scalar(GgufType::FLOAT64);
  f64.float_value = 1.0 / 3.0;
  w.set_value("t.u8", u8);
  w.set_value("t.i8", i8);
  w.set_value("t.u16", u16);
  w.set_value("t.i16", i16);
  w.set_uint32("t.u32", 4000000000u);
  w.set_int32("t.i32", -2000000000);
  w.set_uint64("t.u64", uint64_t{1} << 63);
  w.set_value("t.i64", i64);
  w.set_float32("t.f32", 0.1f);
  w.set_value("t.f64", f64);
  w.set_bool("t.true", true);
  w.set_bool("t.false", false);
  w.set_string("t.str", std::string("h\xc3\xa9llo\0world", 12));
  w.write(path("scalars.gguf"));

  auto f = GgufFile::open(path("scalars.gguf"));
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->metadata().size(), 13u);
  EXPECT_EQ(f->get("t.u8").type, GgufType::UINT8);
  EXPECT_EQ(f->get("t.u8").as_uint(), 200u);
  EXPECT_EQ(f->get("t.i8").type, GgufType::INT8);
  EXPECT_EQ(f->get_int("t.i8"), -100);
  EXPECT_EQ(f->get("t.u16").type, GgufType::UINT16);
  EXPECT_EQ(f->get_int("t.u16"), 60000);
  EXPECT_EQ(f->get("t.i16").type, GgufType::INT16);
  EXPECT_EQ(f->get_int("t.i16"), -30000);
  EXPECT_EQ(f->get("t.u32").type, GgufType::UINT32);
  EXPECT_EQ(f->get_int("t.u32"), 4000000000);
  EXPECT_EQ(f->get("t.i32").type, GgufType::INT32);
  EXPECT_EQ(f->get_int("t.i32"), -2000000000);
  EXPECT_EQ(f->get("t.u64").type, GgufType::UINT64);
  EXPECT_EQ(f->get("t.u64").as_uint(), uint64_t{1} << 63);
  EXPECT_EQ(f->get("t.i64").type, GgufType::INT64);
  EXPECT_EQ(f->get_int("t.i64"), -(int64_t{1} << 50));
  EXPECT_EQ(f->get("t.f32").type, GgufType::FLOAT32);
  EXPECT_EQ(f->get_float("t.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(f->get("t.f64").type, GgufType::FLOAT64);
  EXPECT_EQ(f->get_float("t.f64"), 1.0 / 3.0);
  EXPECT_EQ(f->get("t.true").type, GgufType::BOOL);
  EXPECT_EQ(f->find_bool("t.true"), std::optional<bool>(true));
  EXPECT_EQ(f->find_bool("t.false"), std::optional<bool>(false));
  EXPECT_EQ(f->get_string("t.str"), std::string("h\xc3\xa9llo\0world", 12));
}

TEST_F(GgufWriterTest, RoundTripsArraysIncludingNested) {
  GgufWriter w;
  w.set_strings("a.strings", {"", "a", "<|endoftext|>", std::string(300, 'x')});
  w.set_int32s("a.ints", {0, -1, 2147483647, -2147483647 - 1});
  w.set_float32s("a.floats", {0.5f, -2.25f, 1e30f});
  GgufValue bytes;
  bytes.type = GgufType::ARRAY;
  bytes.array_type = GgufType::UINT8;
  bytes.array_ints = {0, 7, 255};
  w.set_value("a.u8s", bytes);
  GgufValue bools;
  bools.type = GgufType::ARRAY;
  bools.array_type = GgufType::BOOL;
  bools.array_ints = {1, 0, 1};
  w.set_value("a.bools", bools);
  // [[1, 2], [], [3]] as ARRAY of ARRAY of INT64, and one level deeper with strings.
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.array_type = GgufType::ARRAY;
  for (const std::vector<int64_t>& ints : {std::vector<int64_t>{1, 2}, {}, {3}}) {
    GgufValue inner;
    inner.type = GgufType::ARRAY;
    inner.array_type = GgufType::INT64;
    inner.array_ints = ints;
    nested.array_values.push_back(inner);
  }
  w.set_value("a.nested", nested);
  GgufValue deep;
  deep.type = GgufType::ARRAY;
  deep.array_type = GgufType::ARRAY;
  GgufValue middle = deep;
  GgufValue leaf;
  leaf.type = GgufType::ARRAY;
  leaf.array_type = GgufType::STRING;
  leaf.array_strings = {"deep"};
  middle.array_values.push_back(leaf);
  deep.array_values.push_back(middle);
  w.set_value("a.deep", deep);
  w.write(path("arrays.gguf"));

  auto f = GgufFile::open(path("arrays.gguf"));
  const GgufValue& strings = f->get("a.strings");
  ASSERT_TRUE(strings.is_array());
  EXPECT_EQ(strings.array_type, GgufType::STRING);
  EXPECT_EQ(strings.array_strings,
            (std::vector<std::string>{"", "a", "<|endoftext|>", std::string(300, 'x')}));
  const GgufValue& ints = f->get("a.ints");
  EXPECT_EQ(ints.array_type, GgufType::INT32);
  EXPECT_EQ(ints.array_ints, (std::vector<int64_t>{0, -1, 2147483647, -2147483648LL}));
  const GgufValue& floats = f->get("a.floats");
  EXPECT_EQ(floats.array_type, GgufType::FLOAT32);
  EXPECT_EQ(floats.array_floats, (std::vector<double>{0.5, -2.25, static_cast<double>(1e30f)}));
  EXPECT_EQ(f->get("a.u8s").array_type, GgufType::UINT8);
  EXPECT_EQ(f->get("a.u8s").array_ints, (std::vector<int64_t>{0, 7, 255}));
  EXPECT_EQ(f->get("a.bools").array_type, GgufType::BOOL);
  EXPECT_EQ(f->get("a.bools").array_ints, (std::vector<int64_t>{1, 0, 1}));

  const GgufValue& n = f->get("a.nested");
  EXPECT_EQ(n.array_type, GgufType::ARRAY);
  ASSERT_EQ(n.array_size(), 3u);
  EXPECT_EQ(n.array_values[0].array_type, GgufType::INT64);
  EXPECT_EQ(n.array_values[0].array_ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(n.array_values[1].array_size(), 0u);
  EXPECT_EQ(n.array_values[2].array_ints, (std::vector<int64_t>{3}));
  const GgufValue& d = f->get("a.deep");
  ASSERT_EQ(d.array_size(), 1u);
  ASSERT_EQ(d.array_values[0].array_size(), 1u);
  EXPECT_EQ(d.array_values[0].array_values[0].array_strings, (std::vector<std::string>{"deep"}));
}

struct TensorCase {
  std::string name;
  std::vector<int64_t> dims;
  DType type;
};

const std::vector<TensorCase> kTensorCases = {
    {"tok_embd.weight", {8, 3}, DType::F32},
    {"norm.weight", {5}, DType::F16},  // 10 bytes: the next tensor needs padding
    {"blk.0.attn_q.weight", {64, 2}, DType::Q8_0},
    {"blk.0.ffn_down.weight", {256, 2, 2}, DType::Q4_K},
    {"blk.0.four_d", {2, 1, 3, 2}, DType::F32},
};

void write_and_check_tensors(const std::string& file, uint32_t alignment) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  if (alignment != 32) w.set_uint32("general.alignment", alignment);
  std::vector<std::vector<uint8_t>> datas;
  for (size_t i = 0; i < kTensorCases.size(); ++i) {
    const TensorCase& c = kTensorCases[i];
    int64_t rows = 1;
    for (size_t d = 1; d < c.dims.size(); ++d) rows *= c.dims[d];
    datas.push_back(random_bytes(row_bytes(c.type, c.dims[0]) * rows, 100 + i));
    w.add_tensor(c.name, c.dims, c.type, datas.back());
  }
  w.write(file);

  auto f = GgufFile::open(file);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  ASSERT_EQ(f->tensors().size(), kTensorCases.size());
  for (size_t i = 0; i < kTensorCases.size(); ++i) {
    const TensorCase& c = kTensorCases[i];
    const GgufTensorInfo& t = f->tensors()[i];  // add order is kept
    EXPECT_EQ(t.name, c.name);
    EXPECT_EQ(t.dims, c.dims);
    EXPECT_EQ(t.type, c.type);
    EXPECT_EQ(t.offset % alignment, 0u) << c.name;
    EXPECT_EQ(t.n_bytes, datas[i].size());
    EXPECT_EQ(f->find_tensor(c.name), &t);
    ASSERT_EQ(std::memcmp(f->tensor_data(t), datas[i].data(), datas[i].size()), 0) << c.name;
    if (i > 0) {
      EXPECT_GE(t.offset, f->tensors()[i - 1].offset + f->tensors()[i - 1].n_bytes);
    }
  }
  EXPECT_EQ(f->find_tensor("missing"), nullptr);
}

TEST_F(GgufWriterTest, RoundTripsTensorsWithAlignedOffsetsAndExactBytes) {
  write_and_check_tensors(path("tensors.gguf"), 32);
}

TEST_F(GgufWriterTest, HonoursCustomAlignment) {
  write_and_check_tensors(path("aligned64.gguf"), 64);
}

TEST_F(GgufWriterTest, TensorShapesGiveElementsAndRows) {
  GgufWriter w;
  w.add_tensor("q", {256, 3, 2}, DType::Q4_K, std::vector<uint8_t>(144 * 6));
  w.add_tensor("v", {7}, DType::F32, std::vector<uint8_t>(28));
  w.write(path("shapes.gguf"));
  auto f = GgufFile::open(path("shapes.gguf"));
  EXPECT_EQ(f->find_tensor("q")->n_elements, 256 * 6);
  EXPECT_EQ(f->find_tensor("q")->rows(), 6);
  EXPECT_EQ(f->find_tensor("v")->rows(), 1);
  EXPECT_EQ(f->find_tensor("v")->n_elements, 7);
}

TEST_F(GgufWriterTest, KeepsInsertionOrderAndReplacesExistingKeysInPlace) {
  GgufWriter w;
  w.set_string("b.first", "1");
  w.set_uint32("a.second", 2);
  w.set_string("c.third", "3");
  w.set_float32("a.second", 2.5f);  // replaces, keeps position
  EXPECT_TRUE(w.has("a.second"));
  EXPECT_FALSE(w.has("missing"));
  w.write(path("order.gguf"));
  auto f = GgufFile::open(path("order.gguf"));
  ASSERT_EQ(f->metadata().size(), 3u);
  EXPECT_EQ(f->metadata()[0].key, "b.first");
  EXPECT_EQ(f->metadata()[1].key, "a.second");
  EXPECT_EQ(f->metadata()[1].value.type, GgufType::FLOAT32);
  EXPECT_EQ(f->get_float("a.second"), 2.5);
  EXPECT_EQ(f->metadata()[2].key, "c.third");
}

TEST_F(GgufWriterTest, WritesNoTemporaryFileBehind) {
  GgufWriter w;
  w.set_uint32("x.y", 1);
  w.write(path("clean.gguf"));
  EXPECT_TRUE(std::filesystem::exists(path("clean.gguf")));
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path("clean.gguf")).parent_path())) {
    EXPECT_FALSE(e.path().filename().string().starts_with("clean.gguf.tmp")) << e.path();  // PATH.tmp.<pid>.<n>
  }
}

TEST_F(GgufWriterTest, RejectsTensorDataOfWrongSize) {
  GgufWriter w;
  const std::string message =
      error_of([&] { w.add_tensor("w", {64, 2}, DType::Q8_0, std::vector<uint8_t>(100)); });
  EXPECT_NE(message.find("needs 136 bytes of data, got 100"), std::string::npos) << message;
}

TEST_F(GgufWriterTest, RejectsRowNotMultipleOfBlockSize) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("w", {33}, DType::Q8_0, std::vector<uint8_t>(34)), Error);
}

TEST_F(GgufWriterTest, RejectsBadShapesAndDuplicateNames) {
  GgufWriter w;
  EXPECT_THROW(w.add_tensor("w", {}, DType::F32, {}), Error);
  EXPECT_THROW(w.add_tensor("w", {1, 1, 1, 1, 1}, DType::F32, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.add_tensor("w", {4, 0}, DType::F32, {}), Error);
  EXPECT_THROW(w.add_tensor("w", {-4}, DType::F32, {}), Error);
  w.add_tensor("w", {1}, DType::F32, std::vector<uint8_t>(4));
  const std::string message =
      error_of([&] { w.add_tensor("w", {1}, DType::F32, std::vector<uint8_t>(4)); });
  EXPECT_NE(message.find("'w' was already added"), std::string::npos) << message;
}

TEST_F(GgufWriterTest, RejectsInvalidAlignment) {
  GgufWriter w;
  EXPECT_THROW(w.set_uint32("general.alignment", 3), Error);
  EXPECT_THROW(w.set_uint32("general.alignment", 0), Error);
  EXPECT_THROW(w.set_uint64("general.alignment", 32), Error);
}

TEST_F(GgufWriterTest, RejectsValuesOutsideTheirDeclaredType) {
  GgufWriter w;
  GgufValue u8 = scalar(GgufType::UINT8);
  u8.uint_value = 300;
  w.set_value("bad.u8", u8);
  const std::string message = error_of([&] { w.write(path("bad.gguf")); });
  EXPECT_NE(message.find("bad.gguf: metadata key 'bad.u8': value 300 does not fit in UINT8"),
            std::string::npos)
      << message;
  EXPECT_FALSE(std::filesystem::exists(path("bad.gguf")));

  GgufWriter w2;
  GgufValue i16s;
  i16s.type = GgufType::ARRAY;
  i16s.array_type = GgufType::INT16;
  i16s.array_ints = {1, 40000};
  w2.set_value("bad.i16s", i16s);
  EXPECT_THROW(w2.write(path("bad2.gguf")), Error);
}

TEST_F(GgufWriterTest, ReportsWriteFailureWithPathAndReason) {
  GgufWriter w;
  w.set_uint32("x.y", 1);
  const std::string message = error_of([&] { w.write(path("no/such/dir/out.gguf")); });
  EXPECT_NE(message.find("no/such/dir/out.gguf.tmp"), std::string::npos) << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

TEST_F(GgufWriterTest, OpenRejectsEmptyFileDirectoryAndMissingFile) {
  { std::FILE* f = std::fopen(path("empty.gguf").c_str(), "wb"); std::fclose(f); }
  std::string message = error_of([&] { GgufFile::open(path("empty.gguf")); });
  EXPECT_NE(message.find("empty.gguf: file is empty"), std::string::npos) << message;
  message = error_of([&] { GgufFile::open(dir_); });
  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
  message = error_of([&] { GgufFile::open(path("missing.gguf")); });
  EXPECT_NE(message.find("missing.gguf: cannot open: No such file or directory"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace px
