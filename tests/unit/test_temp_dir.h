#pragma once
// A temporary directory private to this test process. ctest runs tests in parallel
// processes, so fixed file names directly under ::testing::TempDir() would collide; this
// directory is removed when the process exits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace px::test {

inline const std::string& temp_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() : path(std::filesystem::path(::testing::TempDir()) / ("parallax-" + std::to_string(::getpid()))) {
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Dir dir;
  static const std::string text = dir.path.string() + "/";
  return text;
}

}  // namespace px::test
