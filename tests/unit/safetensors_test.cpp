// safetensors: SafetensorsFile::parse on handcrafted headers (valid and every kind of broken
// one), writer round trips, sharded models with an index, and a deterministic mini-fuzz.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "model/safetensors.h"
#include "model/safetensors_writer.h"

namespace px {
namespace {

constexpr const char* kFileName = "broken.safetensors";

// 8-byte little-endian header size, the header text, then `data_bytes` bytes (0, 1, 2, ...).
std::vector<uint8_t> raw_file(std::string_view header, size_t data_bytes) {
  std::vector<uint8_t> bytes(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) bytes[8 + header.size() + i] = static_cast<uint8_t>(i);
  return bytes;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no px::Error thrown)";
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { SafetensorsFile::parse(bytes, kFileName); });
}

// The error names the file and contains `phrase`.
void expect_rejected(const std::vector<uint8_t>& bytes, std::string_view phrase) {
  const std::string message = parse_error(bytes);
  EXPECT_NE(message.find(kFileName), std::string::npos) << message;
  EXPECT_NE(message.find(phrase), std::string::npos) << "expected '" << phrase << "' in: " << message;
}

void expect_rejected(std::string_view header, size_t data_bytes, std::string_view phrase) {
  expect_rejected(raw_file(header, data_bytes), phrase);
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::vector<float> as_f32(std::span<const uint8_t> bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// ---- valid files ----

TEST(SafetensorsParse, ReadsHandcraftedFile) {
  const auto bytes = raw_file(
      R"({"__metadata__":{"format":"pt"},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
      R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
      22);
  const auto file = SafetensorsFile::parse(bytes, "hand.safetensors");
  EXPECT_EQ(file->name(), "hand.safetensors");
  ASSERT_EQ(file->tensors().size(), 2u);
  // File order is offset order, not header or name order.
  EXPECT_EQ(file->tensors()[0].name, "a");
  EXPECT_EQ(file->tensors()[1].name, "b");
  const SafetensorsTensor& a = file->get("a");
  EXPECT_EQ(a.dtype_name, "F32");
  EXPECT_EQ(a.type, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a.n_elements, 4);
  EXPECT_EQ(a.n_bytes(), 16u);
  const SafetensorsTensor* b = file->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, DType::BF16);
  EXPECT_EQ(b->begin, 16u);
  EXPECT_EQ(b->end, 22u);
  EXPECT_EQ(file->find("c"), nullptr);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  // Data is addressed from the end of the header.
  EXPECT_EQ(file->data_offset(), 8 + file->header_size());
  const auto data = file->data(*b);
  ASSERT_EQ(data.size(), 6u);
  EXPECT_EQ(data.data(), bytes.data() + file->data_offset() + 16);
  EXPECT_EQ(data[0], 16);
  EXPECT_EQ(data[5], 21);
}

TEST(SafetensorsParse, GgmlDimsReverseTheShape) {
  SafetensorsTensor t;
  t.shape = {128, 64, 3};
  EXPECT_EQ(t.ggml_dims(), (std::vector<int64_t>{3, 64, 128}));
}

TEST(SafetensorsParse, AcceptsHeaderPaddedWithSpaces) {
  const auto file = SafetensorsFile::parse(
      raw_file(R"({"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}      )", 4), "padded");
  EXPECT_EQ(file->get("x").type, DType::F16);
}

TEST(SafetensorsParse, AcceptsFileWithoutTensors) {
  const auto file = SafetensorsFile::parse(raw_file("{}", 0), "empty");
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_TRUE(file->metadata().empty());
}

TEST(SafetensorsParse, AcceptsScalarAndEmptyTensors) {
  // Shape [] is a scalar (one element); a zero dimension stores no bytes at all.
  const auto file = SafetensorsFile::parse(
      raw_file(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
               R"("e":{"dtype":"F32","shape":[0,8],"data_offsets":[4,4]},)"
               R"("e2":{"dtype":"BF16","shape":[3,0],"data_offsets":[4,4]},)"
               R"("t":{"dtype":"I8","shape":[2],"data_offsets":[4,6]}})",
               6),
      "scalars");
  EXPECT_EQ(file->get("s").n_elements, 1);
  EXPECT_EQ(file->get("e").n_elements, 0);
  EXPECT_EQ(file->get("e").n_bytes(), 0u);
  EXPECT_EQ(file->get("t").type, DType::I8);
}

TEST(SafetensorsParse, RecordsTypesWithoutGgmlEquivalent) {
  const auto file = SafetensorsFile::parse(
      raw_file(R"({"f8":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},)"
               R"("f4":{"dtype":"F4","shape":[2,4],"data_offsets":[4,8]}})",
               8),
      "exotic");
  EXPECT_EQ(file->get("f8").dtype_name, "F8_E4M3");
  EXPECT_FALSE(file->get("f8").type.has_value());
  EXPECT_EQ(file->get("f4").n_bytes(), 4u);  // 8 elements of 4 bits
}

TEST(SafetensorsParse, ComputeTypeAcceptsFloatsAndRefusesTheRest) {
  const auto file = SafetensorsFile::parse(
      raw_file(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
               R"("i":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},)"
               R"("q":{"dtype":"F8_E5M2","shape":[8],"data_offsets":[8,16]}})",
               16),
      "types.safetensors");
  EXPECT_EQ(file->compute_type(file->get("w")), DType::BF16);
  const std::string i32 = error_of([&] { file->compute_type(file->get("i")); });
  EXPECT_NE(i32.find("types.safetensors: tensor 'i' has dtype I32"), std::string::npos) << i32;
  const std::string f8 = error_of([&] { file->compute_type(file->get("q")); });
  EXPECT_NE(f8.find("F8_E5M2, which is not supported"), std::string::npos) << f8;
}

TEST(SafetensorsParse, DTypeNamesMapBothWays) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::F64}) {
    const SafetensorsDTypeInfo* info = safetensors_dtype_info(safetensors_dtype_name(t));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->ggml, t);
  }
  EXPECT_EQ(safetensors_dtype_info("f32"), nullptr);  // names are case-sensitive
  const std::string message = error_of([] { safetensors_dtype_name(DType::Q8_0); });
  EXPECT_NE(message.find("Q8_0 cannot be stored"), std::string::npos) << message;
}

// ---- broken files: the header size and the JSON ----

TEST(SafetensorsParse, RejectsFileShorterThanTheHeaderSize) {
  expect_rejected(std::vector<uint8_t>{1, 0, 0}, "too small (3 bytes)");
}

TEST(SafetensorsParse, RejectsHeaderSizeLargerThanTheFile) {
  auto bytes = raw_file("{}", 0);
  bytes[0] = 100;
  expect_rejected(bytes, "header size 100 is larger than the 2 bytes");
}

TEST(SafetensorsParse, RejectsAbsurdHeaderSize) {
  auto bytes = raw_file("{}", 0);
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(bytes.data(), &huge, 8);
  expect_rejected(bytes, "over the limit of 100000000 bytes");
}

TEST(SafetensorsParse, RejectsHeaderNotStartingWithBrace) {
  expect_rejected(" {}", 0, "does not start with '{'");
  expect_rejected("[]", 0, "does not start with '{' (found byte 0x5b)");
  expect_rejected("", 0, "an empty header");
}

TEST(SafetensorsParse, RejectsInvalidJson) {
  expect_rejected(R"({"a":{"dtype":"F32",)", 0, "the header is not valid JSON");
  expect_rejected(R"({"a":1} trailing)", 0, "not valid JSON");
}

TEST(SafetensorsParse, RejectsInvalidUtf8InHeader) {
  expect_rejected("{\"\xff\xfe\":{}}", 0, "not valid JSON");
}

TEST(SafetensorsParse, RejectsDeeplyNestedHeader) {
  expect_rejected(R"({"a":[[[[[[[[[[1]]]]]]]]]]})", 0, "more than 8 levels deep");
}

TEST(SafetensorsParse, RejectsDuplicateTensorName) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  8, "has the key \"a\" twice");
}

TEST(SafetensorsParse, RejectsDuplicateFieldInsideEntry) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,4]}})", 4,
                  "has the key \"shape\" twice");
}

TEST(SafetensorsParse, RejectsEmptyTensorName) {
  expect_rejected(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4,
                  "tensor with an empty name");
}

TEST(SafetensorsParse, RejectsMetadataThatIsNotAnObject) {
  expect_rejected(R"({"__metadata__":["x"]})", 0, "__metadata__ must be an object");
}

TEST(SafetensorsParse, RejectsNonStringMetadataValue) {
  expect_rejected(R"({"__metadata__":{"step":5}})", 0,
                  "__metadata__ value of \"step\" must be a string, found number");
}

// ---- broken files: tensor entries ----

TEST(SafetensorsParse, RejectsEntryThatIsNotAnObject) {
  expect_rejected(R"({"a":[0,4]})", 4, "tensor 'a' must be an object");
}

TEST(SafetensorsParse, RejectsMissingField) {
  expect_rejected(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "tensor 'a' has no \"dtype\"");
  expect_rejected(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4, "has no \"shape\"");
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1]}})", 4, "has no \"data_offsets\"");
}

TEST(SafetensorsParse, RejectsDtypeOfWrongType) {
  expect_rejected(R"({"a":{"dtype":0,"shape":[1],"data_offsets":[0,4]}})", 4,
                  "dtype must be a string, found number");
}

TEST(SafetensorsParse, RejectsUnknownDtype) {
  expect_rejected(R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16,
                  "unknown dtype \"F128\" (known: BOOL, U8");
}

TEST(SafetensorsParse, RejectsShapeThatIsNotAnArray) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", 16,
                  "shape must be an array, found number");
}

TEST(SafetensorsParse, RejectsNegativeShape) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}})", 8,
                  "shape[1] is -1; it must not be negative");
}

TEST(SafetensorsParse, RejectsFractionalOrNonNumericShape) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4,
                  "shape[0] is 1.5; it must be an integer");
  expect_rejected(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8,
                  "shape[0] must be an integer, found string");
}

TEST(SafetensorsParse, RejectsShapeElementCountOverflow) {
  expect_rejected(
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4,
      "element count overflows");
}

TEST(SafetensorsParse, RejectsByteSizeOverflow) {
  expect_rejected(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                  8, "byte size that overflows");
}

TEST(SafetensorsParse, RejectsDimensionAboveInt64) {
  expect_rejected(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})",
                  1, "shape[0] = 18446744073709551615 is too large");
}

TEST(SafetensorsParse, RejectsTooManyDimensions) {
  expect_rejected(
      R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})", 1,
      "17 dimensions");
}

TEST(SafetensorsParse, RejectsSubByteTensorEndingMidByte) {
  expect_rejected(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2,
                  "does not fill whole bytes (12 bits)");
}

TEST(SafetensorsParse, RejectsDataOffsetsOfWrongForm) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4,
                  "data_offsets must be an array [begin, end], found an array of 1");
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":"0-4"}})", 4,
                  "found string");
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4,
                  "data_offsets begin is -4; it must not be negative");
}

TEST(SafetensorsParse, RejectsBeginAfterEnd) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4,
                  "data_offsets [4, 0] begin after they end");
}

TEST(SafetensorsParse, RejectsOffsetsNotMatchingShapeAndDtype) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}})", 12,
                  "[0, 12] (12 bytes), but its shape [2, 3] of F32 needs 24 bytes");
}

TEST(SafetensorsParse, RejectsTensorOutOfBounds) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 12,
                  "lie outside the 12-byte data section");
  expect_rejected(R"({"a":{"dtype":"U8","shape":[4],)"
                  R"("data_offsets":[18446744073709551612,18446744073709551616]}})",
                  4, "data_offsets end is 1.8446744073709552e+19; it must be an integer");
}

TEST(SafetensorsParse, RejectsOverlappingTensors) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
}

TEST(SafetensorsParse, RejectsTwoTensorsSharingTheSameBytes) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                  8, "overlap");
}

TEST(SafetensorsParse, RejectsHoleBetweenTensors) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                  12, "data bytes [4, 8) before tensor 'b' belong to no tensor");
}

TEST(SafetensorsParse, RejectsHoleAtTheStart) {
  expect_rejected(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                  "data bytes [0, 4) before tensor 'b'");
}

TEST(SafetensorsParse, RejectsBytesAfterTheLastTensor) {
  expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 7,
                  "the last 3 bytes of the data section (after offset 4) belong to no tensor");
}

// ---- files on disk ----

class SafetensorsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/safetensors_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void write_text(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }

  std::string dir_;
};

TEST_F(SafetensorsFiles, WriterRoundTripsTensorsAndMetadata) {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("model.norm.weight", DType::F32, {3}, f32_bytes({1.5f, -2.0f, 0.25f}));
  std::vector<uint8_t> half(2 * 2 * 3);
  for (size_t i = 0; i < 6; ++i) {
    const uint16_t h = f32_to_fp16(static_cast<float>(i) - 2.5f);
    std::memcpy(half.data() + 2 * i, &h, 2);
  }
  w.add_tensor("model.embed_tokens.weight", "F16", {2, 3}, half);
  w.add_tensor("flags", "U8", {5}, {1, 0, 1, 1, 0});
  w.write(path("model.safetensors"));
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path("model.safetensors")).parent_path())) {
    EXPECT_FALSE(e.path().filename().string().starts_with("model.safetensors.tmp")) << e.path();  // PATH.tmp.<pid>.<n>
  }

  const auto file = SafetensorsFile::open(path("model.safetensors"));
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const SafetensorsTensor& norm = file->get("model.norm.weight");
  EXPECT_EQ(norm.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(as_f32(file->data(norm)), (std::vector<float>{1.5f, -2.0f, 0.25f}));
  const SafetensorsTensor& embd = file->get("model.embed_tokens.weight");
  EXPECT_EQ(embd.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(embd.dtype_name, "F16");
  const auto embd_data = file->data(embd);
  EXPECT_TRUE(std::equal(embd_data.begin(), embd_data.end(), half.begin(), half.end()));
  const auto flags = file->data(file->get("flags"));
  EXPECT_EQ(std::vector<uint8_t>(flags.begin(), flags.end()), (std::vector<uint8_t>{1, 0, 1, 1, 0}));
  // The in-memory serialization is the same file.
  const std::vector<uint8_t> memory = w.serialize();
  EXPECT_EQ(memory.size(), file->file_size());
  EXPECT_EQ(w.data_bytes(), 12u + 12u + 5u);
}

TEST_F(SafetensorsFiles, WriterAlignsEveryTensorToItsElementSize) {
  SafetensorsWriter w;
  w.add_tensor("odd", "U8", {3}, {1, 2, 3});
  w.add_tensor("half", "BF16", {1}, {0, 0});
  w.add_tensor("double", "F64", {1}, std::vector<uint8_t>(8));
  w.add_tensor("float", "F32", {1}, std::vector<uint8_t>(4));
  const std::vector<uint8_t> bytes = w.serialize();
  const auto file = SafetensorsFile::parse(bytes, "aligned");
  EXPECT_EQ(file->data_offset() % 8, 0u);
  for (const SafetensorsTensor& t : file->tensors()) {
    const uint64_t element = safetensors_dtype_info(t.dtype_name)->bits / 8;
    EXPECT_EQ(t.begin % element, 0u) << t.name;
  }
}

TEST_F(SafetensorsFiles, WriterRejectsBadTensors) {
  SafetensorsWriter w;
  w.add_tensor("a", "F32", {1}, std::vector<uint8_t>(4));
  EXPECT_NE(error_of([&] { w.add_tensor("a", "F32", {1}, std::vector<uint8_t>(4)); })
                .find("tensor 'a' added twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("b", "F32", {2}, std::vector<uint8_t>(4)); })
                .find("needs 64 bits, got 4 bytes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("c", "Q8", {1}, std::vector<uint8_t>(1)); })
                .find("unknown dtype \"Q8\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("__metadata__", "U8", {1}, {0}); }).find("reserved"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_tensor("d", "U8", {-1}, {}); }).find("invalid shape [-1]"),
            std::string::npos);
}

TEST_F(SafetensorsFiles, FailedWriteLeavesNoFile) {
  SafetensorsWriter w;
  w.add_tensor("a", "U8", {1}, {7});
  const std::string message = error_of([&] { w.write(path("no/such/dir/x.safetensors")); });
  EXPECT_NE(message.find("cannot create"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(path("no")));
}

TEST_F(SafetensorsFiles, OpenReportsMissingEmptyAndDirectoryPaths) {
  EXPECT_NE(error_of([&] { SafetensorsFile::open(path("absent.safetensors")); })
                .find("absent.safetensors: cannot open: No such file"),
            std::string::npos);
  write_text("empty.safetensors", "");
  EXPECT_NE(error_of([&] { SafetensorsFile::open(path("empty.safetensors")); })
                .find("file is empty, not a safetensors file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsFile::open(dir_); }).find("is a directory"), std::string::npos);
}

TEST_F(SafetensorsFiles, OpenValidatesLikeParse) {
  const auto bytes = raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4);
  write_text("truncated.safetensors", std::string(bytes.begin(), bytes.end()));
  const std::string message = error_of([&] { SafetensorsFile::open(path("truncated.safetensors")); });
  EXPECT_NE(message.find("truncated.safetensors: tensor 'a'"), std::string::npos) << message;
  EXPECT_NE(message.find("outside the 4-byte data section"), std::string::npos) << message;
}

// ---- models: a single file or shards with an index ----

// Writes shard files holding the named F32 tensors (each [2] = {i, -i}) and, when there is
// more than one shard, the index.
void write_sharded_model(const std::string& dir,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& shards) {
  std::map<std::string, std::string> weight_map;
  uint64_t total = 0;
  float value = 1;
  for (const auto& [file, tensors] : shards) {
    SafetensorsWriter w;
    for (const std::string& name : tensors) {
      w.add_tensor(name, DType::F32, {2}, f32_bytes({value, -value}));
      value += 1;
      weight_map[name] = file;
    }
    w.write(dir + "/" + file);
    total += w.data_bytes();
  }
  if (shards.size() > 1) write_safetensors_index(dir + "/model.safetensors.index.json", weight_map, total);
}

TEST_F(SafetensorsFiles, ModelOpensSingleFileDirectory) {
  write_sharded_model(dir_, {{"model.safetensors", {"a", "b"}}});
  const auto model = SafetensorsModel::open(dir_);
  EXPECT_FALSE(model->is_sharded());
  EXPECT_EQ(model->tensor_names(), (std::vector<std::string>{"a", "b"}));
  const SafetensorsTensorRef b = model->get("b");
  ASSERT_TRUE(b);
  EXPECT_EQ(as_f32(b.data()), (std::vector<float>{2, -2}));
  EXPECT_FALSE(model->find("c"));
}

TEST_F(SafetensorsFiles, ModelMapsOnlyTheShardsOfRequestedTensors) {
  write_sharded_model(dir_, {{"model-00001-of-00002.safetensors", {"embed", "layer0"}},
                             {"model-00002-of-00002.safetensors", {"layer1", "norm"}}});
  const auto model = SafetensorsModel::open(dir_);
  EXPECT_TRUE(model->is_sharded());
  EXPECT_EQ(model->shard_paths().size(), 2u);
  EXPECT_EQ(model->index_metadata().at("total_size"), "32");
  EXPECT_EQ(model->tensor_names(), (std::vector<std::string>{"embed", "layer0", "layer1", "norm"}));
  EXPECT_EQ(model->open_shard_count(), 0u);
  ASSERT_NE(model->shard_of("norm"), nullptr);
  EXPECT_EQ(*model->shard_of("norm"), dir_ + "/model-00002-of-00002.safetensors");

  const SafetensorsTensorRef norm = model->get("norm");
  EXPECT_EQ(model->open_shard_count(), 1u);
  EXPECT_EQ(as_f32(norm.data()), (std::vector<float>{4, -4}));
  EXPECT_EQ(norm.file->name(), dir_ + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(as_f32(model->get("layer1").data()), (std::vector<float>{3, -3}));
  EXPECT_EQ(model->open_shard_count(), 1u);

  EXPECT_FALSE(model->find("missing"));
  EXPECT_EQ(model->open_shard_count(), 1u);
  const std::string message = error_of([&] { model->get("missing"); });
  EXPECT_NE(message.find("model.safetensors.index.json: missing tensor 'missing'"), std::string::npos)
      << message;

  EXPECT_EQ(as_f32(model->get("embed").data()), (std::vector<float>{1, -1}));
  EXPECT_EQ(model->open_shard_count(), 2u);
}

TEST_F(SafetensorsFiles, ModelOpensAnIndexFileGivenDirectly) {
  write_sharded_model(dir_, {{"a.safetensors", {"x"}}, {"b.safetensors", {"y"}}});
  const auto model = SafetensorsModel::open(path("model.safetensors.index.json"));
  EXPECT_EQ(as_f32(model->get("y").data()), (std::vector<float>{2, -2}));
}

TEST_F(SafetensorsFiles, ModelRejectsIndexNamingAMissingShard) {
  write_sharded_model(dir_, {{"a.safetensors", {"x"}}, {"b.safetensors", {"y"}}});
  std::filesystem::remove(path("b.safetensors"));
  const std::string message = error_of([&] { SafetensorsModel::open(dir_); });
  EXPECT_NE(message.find("model.safetensors.index.json: shard file " + path("b.safetensors") +
                         " (holding 1 tensors, e.g. 'y') cannot be opened: No such file"),
            std::string::npos)
      << message;
}

TEST_F(SafetensorsFiles, ModelRejectsShardWithoutATensorTheIndexClaims) {
  write_sharded_model(dir_, {{"a.safetensors", {"x"}}, {"b.safetensors", {"y"}}});
  write_safetensors_index(path("model.safetensors.index.json"),
                          {{"x", "a.safetensors"}, {"y", "b.safetensors"}, {"z", "b.safetensors"}}, 0);
  const auto model = SafetensorsModel::open(dir_);
  EXPECT_EQ(as_f32(model->get("x").data()), (std::vector<float>{1, -1}));  // shard a is fine
  const std::string message = error_of([&] { model->find("y"); });
  EXPECT_NE(message.find("the index says tensor 'z' is in " + path("b.safetensors") +
                         ", but that file has no such tensor"),
            std::string::npos)
      << message;
  EXPECT_EQ(model->open_shard_count(), 1u);  // the bad shard was not kept
}

TEST_F(SafetensorsFiles, ModelRejectsTensorInTheWrongShard) {
  write_sharded_model(dir_, {{"a.safetensors", {"x", "y"}}, {"b.safetensors", {"z"}}});
  write_safetensors_index(path("model.safetensors.index.json"),
                          {{"x", "a.safetensors"}, {"y", "b.safetensors"}, {"z", "b.safetensors"}}, 0);
  const auto model = SafetensorsModel::open(dir_);
  const std::string message = error_of([&] { model->open_all_shards(); });
  EXPECT_NE(message.find("tensor 'y' is in " + path("a.safetensors") + ", but the index says it is in " +
                         path("b.safetensors")),
            std::string::npos)
      << message;
}

TEST_F(SafetensorsFiles, ModelRejectsShardPathsOutsideTheDirectory) {
  for (const std::string shard : {"../a.safetensors", "/etc/passwd", "sub/a.safetensors", ".."}) {
    write_safetensors_index(path("model.safetensors.index.json"), {{"x", shard}}, 0);
    const std::string message = error_of([&] { SafetensorsModel::open(dir_); });
    EXPECT_NE(message.find("shard files must be plain file names"), std::string::npos) << message;
  }
}

TEST_F(SafetensorsFiles, ModelRejectsMalformedIndex) {
  const auto expect_index_error = [&](const std::string& text, std::string_view phrase) {
    write_text("model.safetensors.index.json", text);
    const std::string message = error_of([&] { SafetensorsModel::open(dir_); });
    EXPECT_NE(message.find("model.safetensors.index.json"), std::string::npos) << message;
    EXPECT_NE(message.find(phrase), std::string::npos) << "expected '" << phrase << "' in " << message;
  };
  expect_index_error("{\"metadata\": {}}", "the index has no \"weight_map\"");
  expect_index_error("{\"weight_map\": [\"a\"]}", "\"weight_map\" must be an object");
  expect_index_error("{\"weight_map\": {}}", "lists no tensors");
  expect_index_error("{\"weight_map\": {\"x\": 3}}", "entry for tensor 'x' must be a file name string");
  expect_index_error("{\"weight_map\": {\"x\": \"a\", \"x\": \"b\"}}", "has the key \"x\" twice");
  expect_index_error("{\"weight_map\": ", "the index is not valid JSON");
  expect_index_error("[1]", "the index must be a JSON object");
  expect_index_error("{\"metadata\": 1, \"weight_map\": {\"x\": \"a\"}}", "\"metadata\" must be an object");
}

TEST_F(SafetensorsFiles, ModelRejectsDirectoryWithoutWeights) {
  const std::string message = error_of([&] { SafetensorsModel::open(dir_); });
  EXPECT_NE(message.find("no Hugging Face weights found (looked for model.safetensors and "
                         "model.safetensors.index.json)"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of([&] { SafetensorsModel::open(path("nothing")); }).find("cannot open"),
            std::string::npos);
}

// ---- mini-fuzz ----

std::vector<uint8_t> fuzz_seed_file() {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("model.layers.0.self_attn.q_proj.weight", "BF16", {4, 4}, std::vector<uint8_t>(32, 1));
  w.add_tensor("model.norm.weight", "F32", {4}, f32_bytes({1, 2, 3, 4}));
  w.add_tensor("scalar", "F64", {}, std::vector<uint8_t>(8, 2));
  w.add_tensor("empty", "I32", {0, 3}, {});
  w.add_tensor("bits", "F4", {2, 2}, {0x12, 0x34});
  return w.serialize();
}

TEST(SafetensorsFuzz, MutatedFilesEitherParseOrThrowPxError) {
  const std::vector<uint8_t> original = fuzz_seed_file();
  ASSERT_NO_THROW(SafetensorsFile::parse(original, "seed.safetensors"));
  uint64_t header_size = 0;
  std::memcpy(&header_size, original.data(), 8);
  std::mt19937_64 rng(20240611);
  int parsed = 0;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    std::vector<uint8_t> bytes = original;
    switch (rng() % 6) {
      case 0:  // flip a few bits anywhere
        for (int i = 0, n = 1 + rng() % 4; i < n; ++i) bytes[rng() % bytes.size()] ^= 1 << (rng() % 8);
        break;
      case 1:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 2: {  // an extreme 8-byte value (the header size, or garbage in the JSON)
        const size_t at = (rng() % 2) ? 0 : rng() % (bytes.size() - 8);
        const uint64_t extreme = (rng() % 2) ? ~uint64_t{0} : (uint64_t{1} << (rng() % 64));
        std::memcpy(bytes.data() + at, &extreme, 8);
        break;
      }
      case 3: {  // change digits of the JSON: shapes and offsets
        for (int i = 0, n = 1 + rng() % 3; i < n; ++i) {
          const size_t at = 8 + rng() % header_size;
          if (bytes[at] >= '0' && bytes[at] <= '9') bytes[at] = static_cast<uint8_t>('0' + rng() % 10);
        }
        break;
      }
      case 4: {  // JSON punctuation where it does not belong
        static constexpr char kPunct[] = "{}[],:\"-.e ";
        for (int i = 0, n = 1 + rng() % 3; i < n; ++i) {
          bytes[8 + rng() % header_size] = static_cast<uint8_t>(kPunct[rng() % (sizeof(kPunct) - 1)]);
        }
        break;
      }
      default:  // random byte values
        for (int i = 0, n = 1 + rng() % 8; i < n; ++i) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
        break;
    }
    try {
      auto f = SafetensorsFile::parse(bytes, "fuzz.safetensors");
      ++parsed;
      uint64_t covered = 0;
      for (const SafetensorsTensor& t : f->tensors()) {
        const auto data = f->data(t);
        ASSERT_GE(data.data(), bytes.data());
        ASSERT_LE(data.data() + data.size(), bytes.data() + bytes.size());
        ASSERT_EQ(t.begin, covered) << "iteration " << iteration;
        covered = t.end;
      }
      ASSERT_EQ(f->data_offset() + covered, bytes.size()) << "iteration " << iteration;
    } catch (const Error&) {
      // expected for most mutations
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iteration << " threw a non-px exception: " << e.what();
    }
  }
  // Some mutations (tensor data, metadata text) leave the file valid.
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace px
