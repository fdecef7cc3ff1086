// GgufFile::parse on handcrafted bytes: a v2 file, every kind of broken file, typed
// getters, and a deterministic mini-fuzz over mutations of a valid file.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "model/gguf.h"

namespace px {
namespace {

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ8_0 = 8;
constexpr uint32_t kTypeUint32 = 4;
constexpr uint32_t kTypeString = 8;
constexpr uint32_t kTypeArray = 9;
constexpr uint32_t kTypeUint64 = 10;

// Little-endian GGUF bytes, field by field.
class ByteBuilder {
 public:
  template <typename T>
  ByteBuilder& put(T value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  ByteBuilder& u8(uint8_t v) { return put(v); }
  ByteBuilder& u32(uint32_t v) { return put(v); }
  ByteBuilder& u64(uint64_t v) { return put(v); }
  ByteBuilder& raw(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  ByteBuilder& str(std::string_view s) { return u64(s.size()).raw(s); }
  ByteBuilder& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  ByteBuilder& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(kTypeUint32).u32(v); }
  ByteBuilder& kv_string(std::string_view key, std::string_view v) {
    return str(key).u32(kTypeString).str(v);
  }
  ByteBuilder& tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                      uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  ByteBuilder& pad_to(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  ByteBuilder& zeros(size_t n) {
    bytes_.resize(bytes_.size() + n, 0);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> truncated(size_t n) const {
    return std::vector<uint8_t>(bytes_.begin(), bytes_.begin() + n);
  }

 private:
  std::vector<uint8_t> bytes_;
};

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    GgufFile::parse(bytes, "broken.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "(parsed without error)";
}

// The message names the file and contains `phrase`.
void expect_rejected(const std::vector<uint8_t>& bytes, std::string_view phrase) {
  const std::string message = parse_error(bytes);
  EXPECT_EQ(message.rfind("broken.gguf: ", 0), 0u) << message;
  EXPECT_NE(message.find(phrase), std::string::npos)
      << "expected \"" << phrase << "\" in: " << message;
}

// A valid v3 file with one F32 tensor [4, 2] and two metadata entries.
ByteBuilder valid_file() {
  ByteBuilder b;
  b.header(3, 1, 2).kv_string("general.architecture", "llama").kv_u32("llama.block_count", 2);
  b.tensor("w", {4, 2}, kF32, 0).pad_to(32);
  for (int i = 0; i < 8; ++i) b.put<float>(static_cast<float>(i));
  return b;
}

// One F32 tensor per spec, with `data_bytes` of data after the padded header.
std::vector<uint8_t> tensor_file(
    const std::vector<std::tuple<std::string, std::vector<uint64_t>, uint32_t, uint64_t>>& specs,
    size_t data_bytes) {
  ByteBuilder b;
  b.header(3, specs.size(), 0);
  for (const auto& [name, dims, type, offset] : specs) b.tensor(name, dims, type, offset);
  return b.pad_to(32).zeros(data_bytes).bytes();
}

TEST(GgufParse, ReadsHandcraftedVersion2File) {
  ByteBuilder b;
  b.header(2, 2, 3)
      .kv_string("general.architecture", "llama")
      .kv_u32("llama.context_length", 4096)
      .str("tokenizer.ggml.tokens").u32(kTypeArray).u32(kTypeString).u64(3)
      .str("<s>").str("</s>").str("hello");
  b.tensor("token_embd.weight", {32, 2}, kQ8_0, 0).tensor("output_norm.weight", {3}, kF32, 96);
  const size_t header_end = b.size();
  b.pad_to(32);
  const size_t data_start = b.size();
  for (int i = 0; i < 68; ++i) b.u8(static_cast<uint8_t>(i));
  b.zeros(96 - 68);
  b.put<float>(1.5f).put<float>(-2.0f).put<float>(3.25f);

  auto f = GgufFile::parse(b.bytes(), "v2.gguf");
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_GE(f->data_offset(), header_end);
  EXPECT_EQ(f->data_offset(), data_start);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("llama.context_length"), 4096);
  EXPECT_EQ(f->get("tokenizer.ggml.tokens").array_strings,
            (std::vector<std::string>{"<s>", "</s>", "hello"}));

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, DType::Q8_0);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(emb->n_bytes, 68u);
  EXPECT_EQ(emb->n_elements, 64);
  EXPECT_EQ(f->tensor_data(*emb)[67], 67);
  const GgufTensorInfo* norm = f->find_tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  float values[3];
  std::memcpy(values, f->tensor_data(*norm), sizeof(values));
  EXPECT_EQ(values[0], 1.5f);
  EXPECT_EQ(values[1], -2.0f);
  EXPECT_EQ(values[2], 3.25f);
}

TEST(GgufParse, AcceptsFileWithoutTensors) {
  ByteBuilder b;
  b.header(3, 0, 1).kv_u32("a.b", 1);
  auto f = GgufFile::parse(b.bytes(), "meta.gguf");
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->get_int("a.b"), 1);
}

TEST(GgufParse, ParsesLargeVocabularyArray) {
  constexpr uint64_t kTokens = 150000;
  ByteBuilder b;
  b.header(3, 0, 1).str("tokenizer.ggml.tokens").u32(kTypeArray).u32(kTypeString).u64(kTokens);
  for (uint64_t i = 0; i < kTokens; ++i) b.str("tok" + std::to_string(i));
  auto f = GgufFile::parse(b.bytes(), "vocab.gguf");
  const GgufValue& tokens = f->get("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.array_size(), kTokens);
  EXPECT_EQ(tokens.array_strings[0], "tok0");
  EXPECT_EQ(tokens.array_strings[kTokens - 1], "tok149999");
}

// --- broken headers ---------------------------------------------------------------

TEST(GgufParse, RejectsBadMagic) {
  ByteBuilder b;
  b.raw("GGML").u32(3).u64(0).u64(0);
  expect_rejected(b.bytes(), "not a GGUF file");
}

TEST(GgufParse, RejectsVersion1) {
  ByteBuilder b;
  b.header(1, 0, 0);
  expect_rejected(b.bytes(), "GGUF version 1 is not supported");
}

TEST(GgufParse, RejectsUnknownVersion) {
  ByteBuilder b;
  b.header(7, 0, 0);
  expect_rejected(b.bytes(), "unsupported GGUF version 7");
}

TEST(GgufParse, RejectsBigEndianFile) {
  ByteBuilder b;
  b.raw("GGUF").u32(0x03000000).u64(0).u64(0);
  expect_rejected(b.bytes(), "big-endian");
}

TEST(GgufParse, RejectsTruncatedHeader) {
  expect_rejected(valid_file().truncated(2), "file is truncated: magic");
  expect_rejected(valid_file().truncated(20), "file is truncated: metadata count");
  expect_rejected({}, "file is truncated");
}

TEST(GgufParse, RejectsCountsTheFileCannotHold) {
  ByteBuilder b;
  b.header(3, uint64_t{1} << 40, 1).kv_u32("a.b", 1);
  expect_rejected(b.bytes(), "more than the remaining");
  ByteBuilder c;
  c.header(3, 0, uint64_t{1} << 62);
  expect_rejected(c.bytes(), "more than the remaining");
}

// --- broken metadata --------------------------------------------------------------

TEST(GgufParse, RejectsTruncationInsideKeyString) {
  ByteBuilder b;
  b.header(3, 0, 1).u64(40).raw("general.architecture");  // 20 of 40 key bytes
  expect_rejected(b.bytes(), "key of metadata entry #0 has length 40, but only 20 bytes remain");
}

TEST(GgufParse, RejectsTruncationInsideValueString) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.name").u32(kTypeString).u64(100).raw("only a few");
  expect_rejected(b.bytes(), "string value of metadata key 'a.name' has length 100");
}

TEST(GgufParse, RejectsTruncationInsideScalarValue) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.count").u32(kTypeUint64).u32(7);  // 4 of 8 bytes
  b.raw("xxxxxx");  // keep enough bytes for the header's count check
  expect_rejected(b.truncated(b.size() - 6), "file is truncated: UINT64 value of metadata key");
}

TEST(GgufParse, RejectsHugeStringLengthWithoutAllocating) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.name").u32(kTypeString).u64(uint64_t{1} << 60).raw("abc");
  expect_rejected(b.bytes(), "has length 1152921504606846976");
}

TEST(GgufParse, RejectsHugeArrayCountWithoutAllocating) {
  ByteBuilder ints;
  ints.header(3, 0, 1).str("a.ids").u32(kTypeArray).u32(kTypeUint32).u64(uint64_t{1} << 60);
  ints.u32(1).u32(2);
  expect_rejected(ints.bytes(), "claims an array of 1152921504606846976 UINT32 elements");
  ByteBuilder strings;
  strings.header(3, 0, 1).str("a.tokens").u32(kTypeArray).u32(kTypeString).u64(uint64_t{1} << 60);
  strings.str("x");
  expect_rejected(strings.bytes(), "cannot fit in the");
  ByteBuilder nested;
  nested.header(3, 0, 1).str("a.nested").u32(kTypeArray).u32(kTypeArray).u64(uint64_t{1} << 60);
  nested.zeros(24);
  expect_rejected(nested.bytes(), "cannot fit in the");
}

TEST(GgufParse, RejectsUnknownValueType) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.b").u32(13).u32(0);
  expect_rejected(b.bytes(), "metadata key 'a.b' has unknown value type 13");
}

TEST(GgufParse, RejectsUnknownArrayElementType) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.b").u32(kTypeArray).u32(77).u64(0);
  expect_rejected(b.bytes(), "unknown array element type 77");
}

ByteBuilder nested_arrays(int levels) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.deep").u32(kTypeArray);
  for (int i = 1; i < levels; ++i) b.u32(kTypeArray).u64(1);
  return b.u32(kTypeUint32).u64(1).u32(42);
}

TEST(GgufParse, AcceptsArraysNestedEightDeep) {
  auto f = GgufFile::parse(nested_arrays(8).bytes(), "deep.gguf");
  const GgufValue* v = &f->get("a.deep");
  for (int i = 1; i < 8; ++i) {
    ASSERT_EQ(v->array_values.size(), 1u);
    v = &v->array_values[0];
  }
  EXPECT_EQ(v->array_ints, (std::vector<int64_t>{42}));
}

TEST(GgufParse, RejectsArraysNestedTooDeep) {
  expect_rejected(nested_arrays(9).bytes(), "nests arrays more than 8 levels deep");
}

TEST(GgufParse, RejectsUint64ArrayElementAboveInt64Max) {
  ByteBuilder b;
  b.header(3, 0, 1).str("a.big").u32(kTypeArray).u32(kTypeUint64).u64(1).u64(~uint64_t{0});
  expect_rejected(b.bytes(), "above the supported maximum");
}

TEST(GgufParse, RejectsDuplicateKey) {
  ByteBuilder b;
  b.header(3, 0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
  expect_rejected(b.bytes(), "duplicate metadata key 'a.b'");
}

TEST(GgufParse, RejectsEmptyKey) {
  ByteBuilder b;
  b.header(3, 0, 1).kv_u32("", 1);
  expect_rejected(b.bytes(), "metadata entry #0 has an empty key");
}

TEST(GgufParse, RejectsOverlongKey) {
  ByteBuilder b;
  b.header(3, 0, 1).kv_u32(std::string(70000, 'k'), 1);
  expect_rejected(b.bytes(), "has length 70000, over the limit of 65536 bytes");
}

TEST(GgufParse, RejectsAlignmentNotPowerOfTwo) {
  ByteBuilder b;
  b.header(3, 0, 1).kv_u32("general.alignment", 3);
  expect_rejected(b.bytes(), "general.alignment is 3; it must be a nonzero power of two");
  ByteBuilder zero;
  zero.header(3, 0, 1).kv_u32("general.alignment", 0);
  expect_rejected(zero.bytes(), "general.alignment is 0");
}

TEST(GgufParse, RejectsAlignmentOfWrongType) {
  ByteBuilder b;
  b.header(3, 0, 1).str("general.alignment").u32(kTypeUint64).u64(32);
  expect_rejected(b.bytes(), "general.alignment must be a UINT32, found UINT64");
}

TEST(GgufParse, HonoursAlignmentForDataSectionAndOffsets) {
  ByteBuilder b;
  b.header(3, 2, 1).kv_u32("general.alignment", 128);
  b.tensor("a", {4}, kF32, 0).tensor("b", {4}, kF32, 128).pad_to(128).zeros(128 + 16);
  auto f = GgufFile::parse(b.bytes(), "a128.gguf");
  EXPECT_EQ(f->alignment(), 128u);
  EXPECT_EQ(f->data_offset(), 128u);
  ByteBuilder bad;
  bad.header(3, 1, 1).kv_u32("general.alignment", 128);
  bad.tensor("a", {4}, kF32, 32).pad_to(128).zeros(256);
  expect_rejected(bad.bytes(), "offset 32 is not a multiple of the alignment 128");
}

// --- broken tensor infos ----------------------------------------------------------

TEST(GgufParse, RejectsTruncationInsideTensorInfo) {
  ByteBuilder b;
  b.header(3, 1, 1).kv_string("general.name", std::string(64, 'n'));
  b.str("w").u32(2).u64(4);  // the second dimension, type and offset are missing
  expect_rejected(b.bytes(), "file is truncated: dimension of tensor 'w'");
}

TEST(GgufParse, RejectsTruncatedTensorData) {
  const ByteBuilder b = valid_file();
  expect_rejected(b.truncated(b.size() - 1), "tensor 'w' data [offset");
  expect_rejected(b.truncated(b.size() - 1), "lies outside the file (size");
}

TEST(GgufParse, RejectsUnknownTensorType) {
  expect_rejected(tensor_file({{"w", {4}, 99, 0}}, 64), "tensor 'w' has unknown type id 99");
}

TEST(GgufParse, RejectsFiveDimensions) {
  expect_rejected(tensor_file({{"w", {1, 1, 1, 1, 1}, kF32, 0}}, 64),
                  "tensor 'w' has 5 dimensions (expected 1 to 4)");
}

TEST(GgufParse, RejectsZeroDimensions) {
  expect_rejected(tensor_file({{"w", {}, kF32, 0}}, 64), "has 0 dimensions");
}

TEST(GgufParse, RejectsZeroDimension) {
  expect_rejected(tensor_file({{"w", {4, 0}, kF32, 0}}, 64),
                  "tensor 'w' dimension 1 is 0; every dimension must be positive");
}

TEST(GgufParse, RejectsNegativeDimension) {
  expect_rejected(tensor_file({{"w", {static_cast<uint64_t>(-4)}, kF32, 0}}, 64),
                  "dimension 0 is -4; every dimension must be positive");
}

TEST(GgufParse, RejectsDimensionProductOverflow) {
  expect_rejected(tensor_file({{"w", {uint64_t{1} << 32, uint64_t{1} << 32}, kF32, 0}}, 64),
                  "whose product overflows a 64-bit integer");
}

TEST(GgufParse, RejectsByteSizeOverflow) {
  // 2^62 elements fit in int64, but 2^64 bytes of F32 do not fit in 64 bits.
  expect_rejected(tensor_file({{"w", {uint64_t{1} << 62}, kF32, 0}}, 64),
                  "byte size that overflows 64 bits");
}

TEST(GgufParse, RejectsRowNotMultipleOfBlockSize) {
  expect_rejected(tensor_file({{"w", {33}, kQ8_0, 0}}, 64),
                  "row length 33 is not a multiple of the Q8_0 block size 32");
}

TEST(GgufParse, RejectsUnalignedOffset) {
  expect_rejected(tensor_file({{"w", {4}, kF32, 8}}, 64),
                  "tensor 'w' data offset 8 is not a multiple of the alignment 32");
}

TEST(GgufParse, RejectsTensorOutOfBounds) {
  expect_rejected(tensor_file({{"w", {4}, kF32, 1024}}, 64), "lies outside the file");
  expect_rejected(tensor_file({{"w", {4}, kF32, ~uint64_t{31}}}, 64), "lies outside the file");
}

TEST(GgufParse, RejectsOverlappingTensors) {
  // a: 64 bytes at 0; b starts at 32, inside a.
  expect_rejected(tensor_file({{"a", {16}, kF32, 0}, {"b", {16}, kF32, 32}}, 128),
                  "tensors 'a' [data offset 0, 64 bytes] and 'b' [data offset 32, 64 bytes] "
                  "overlap");
}

TEST(GgufParse, RejectsDuplicateTensorName) {
  expect_rejected(tensor_file({{"w", {4}, kF32, 0}, {"w", {4}, kF32, 32}}, 64),
                  "duplicate tensor name 'w'");
}

TEST(GgufParse, RejectsEmptyTensorName) {
  expect_rejected(tensor_file({{"", {4}, kF32, 0}}, 64), "tensor info #0 has an empty name");
}

// --- typed getters ----------------------------------------------------------------

TEST(GgufGetters, WrongTypeNamesFileKeyAndFoundType) {
  auto f = GgufFile::parse(valid_file().bytes(), "model.gguf");
  try {
    f->get_int("general.architecture");
    FAIL() << "get_int on a string did not throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.gguf"), std::string::npos) << m;
    EXPECT_NE(m.find("general.architecture"), std::string::npos) << m;
    EXPECT_NE(m.find("found STRING"), std::string::npos) << m;
  }
  EXPECT_THROW(f->get_string("llama.block_count"), Error);
  EXPECT_THROW(f->find_string("llama.block_count"), Error);
  EXPECT_THROW(f->find_bool("llama.block_count"), Error);
  EXPECT_THROW(f->get_float("general.architecture"), Error);
}

TEST(GgufGetters, MissingKeysThrowForGetAndAreEmptyForFind) {
  auto f = GgufFile::parse(valid_file().bytes(), "model.gguf");
  EXPECT_EQ(f->find("no.such.key"), nullptr);
  EXPECT_FALSE(f->find_int("no.such.key").has_value());
  EXPECT_FALSE(f->find_string("no.such.key").has_value());
  EXPECT_FALSE(f->find_float("no.such.key").has_value());
  EXPECT_FALSE(f->find_bool("no.such.key").has_value());
  try {
    f->get("no.such.key");
    FAIL() << "get on a missing key did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.gguf: required metadata key 'no.such.key' is "
                                         "missing"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(f->find_int("llama.block_count"), std::optional<int64_t>(2));
  EXPECT_EQ(f->find_float("llama.block_count"), std::optional<double>(2.0));  // ints widen
  EXPECT_EQ(f->find_string("general.architecture"), std::optional<std::string>("llama"));
}

TEST(GgufGetters, IntegerConversionsAreRangeChecked) {
  GgufValue negative;
  negative.type = GgufType::INT32;
  negative.int_value = -1;
  EXPECT_EQ(negative.as_int(), -1);
  EXPECT_THROW(negative.as_uint(), Error);
  GgufValue huge;
  huge.type = GgufType::UINT64;
  huge.uint_value = ~uint64_t{0};
  EXPECT_EQ(huge.as_uint(), ~uint64_t{0});
  EXPECT_THROW(huge.as_int(), Error);
  GgufValue flag;
  flag.type = GgufType::BOOL;
  flag.uint_value = 1;
  EXPECT_TRUE(flag.as_bool());
  EXPECT_THROW(flag.as_string(), Error);
  GgufValue text;
  text.type = GgufType::STRING;
  EXPECT_THROW(text.as_bool(), Error);
  EXPECT_THROW(text.as_float(), Error);
}

// --- mini fuzz --------------------------------------------------------------------

// A valid file touching every parser path: scalars, strings, nested and string arrays,
// custom alignment, several tensors.
std::vector<uint8_t> rich_file() {
  ByteBuilder b;
  b.header(3, 3, 5).kv_u32("general.alignment", 64).kv_string("general.architecture", "llama");
  b.str("tokenizer.ggml.tokens").u32(kTypeArray).u32(kTypeString).u64(4);
  b.str("<s>").str("</s>").str("a").str("bc");
  b.str("a.nested").u32(kTypeArray).u32(kTypeArray).u64(2);
  b.u32(kTypeUint32).u64(2).u32(1).u32(2).u32(kTypeString).u64(1).str("x");
  b.str("a.floats").u32(kTypeArray).u32(6).u64(3).put<float>(1).put<float>(2).put<float>(3);
  b.tensor("a", {32, 2}, kQ8_0, 0).tensor("b", {8}, kF32, 128).tensor("c", {4, 2, 2, 1}, kF32, 192);
  return b.pad_to(64).zeros(192 + 64).bytes();
}

TEST(GgufFuzz, MutatedFilesEitherParseOrThrowPxError) {
  const std::vector<uint8_t> original = rich_file();
  ASSERT_NO_THROW(GgufFile::parse(original, "rich.gguf"));
  std::mt19937_64 rng(20240611);
  int parsed = 0;
  for (int iteration = 0; iteration < 2000; ++iteration) {
    std::vector<uint8_t> bytes = original;
    switch (rng() % 4) {
      case 0:  // flip a few bits
        for (int i = 0, n = 1 + rng() % 4; i < n; ++i) bytes[rng() % bytes.size()] ^= 1 << (rng() % 8);
        break;
      case 1:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 2: {  // overwrite 8 bytes with an extreme value (lengths, counts, dims)
        const size_t at = rng() % (bytes.size() - 8);
        const uint64_t extreme = (rng() % 2) ? ~uint64_t{0} : (uint64_t{1} << (rng() % 64));
        std::memcpy(bytes.data() + at, &extreme, 8);
        break;
      }
      default:  // random byte values
        for (int i = 0, n = 1 + rng() % 8; i < n; ++i) bytes[rng() % bytes.size()] = rng();
        break;
    }
    try {
      auto f = GgufFile::parse(bytes, "fuzz.gguf");
      ++parsed;
      for (const GgufTensorInfo& t : f->tensors()) {
        // Validated tensors lie inside the buffer: touch their first and last bytes.
        const uint8_t* data = f->tensor_data(t);
        ASSERT_GE(data, bytes.data());
        ASSERT_LE(data + t.n_bytes, bytes.data() + bytes.size());
      }
    } catch (const Error&) {
      // expected for most mutations
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iteration << " threw a non-px exception: " << e.what();
    }
  }
  // Some mutations (e.g. in string contents or tensor data) leave the file valid.
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace px
