// Atomic file writes: a failure leaves nothing behind, and writers racing for one path never
// mix their bytes.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/file_write.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int temporaries_of(const std::string& path) {
  int n = 0;
  const std::string prefix = std::filesystem::path(path).filename().string() + ".tmp";
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    if (e.path().filename().string().starts_with(prefix)) ++n;
  }
  return n;
}

TEST(FileWrite, AFailedWriteLeavesNeitherFileNorTemporary) {
  const std::string path = test::temp_dir() + "file_write_failed.txt";
  EXPECT_THROW(write_file_atomically(path, [](const WriteBytes& put) {
                 put("half", 4);
                 throw Error("stop");
               }),
               Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(temporaries_of(path), 0);
}

TEST(FileWrite, ConcurrentWritersOfOnePathNeverMixTheirBytes) {
  const std::string path = test::temp_dir() + "file_write_race.txt";
  constexpr int kWriters = 8;
  std::vector<std::thread> writers;
  std::vector<std::string> texts;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) texts.push_back(std::string(200000, char('a' + w)));
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int round = 0; round < 5; ++round) {
        // Written in pieces, so that a shared temporary file would interleave them.
        try {
          write_file_atomically(path, [&](const WriteBytes& put) {
            for (size_t at = 0; at < texts[w].size(); at += 1000) put(texts[w].data() + at, 1000);
          });
        } catch (const Error&) {
          ++failures;  // e.g. a rename whose temporary file another writer already renamed
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  const std::string got = read_all(path);
  ASSERT_EQ(got.size(), texts[0].size());
  EXPECT_EQ(got, std::string(got.size(), got[0])) << "bytes of two writers in one file";
  EXPECT_EQ(temporaries_of(path), 0);
}

}  // namespace
}  // namespace px
