#pragma once
// Stop strings over streamed text. Generated text arrives piece by piece; a stop string may
// span several pieces, so text that could be the start of a stop string is held back until
// the next pieces show whether it is one. Nothing from the first stop string on is ever
// released. Shared by every engine (serial and continuous batching).
#include <string>
#include <string_view>
#include <vector>

namespace px {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored (they would match everywhere).
  explicit StopStringMatcher(std::vector<std::string> stops = {});

  // Appends generated text and returns the part that is now safe to emit: the text before a
  // stop string once one is complete (stopped() turns true), otherwise everything except the
  // longest tail that is a proper prefix of some stop string. After a stop, returns "".
  std::string push(std::string_view text);

  // End of generation: the held tail can no longer become a stop string; returns it ("" after
  // a stop).
  std::string flush();

  bool stopped() const { return stopped_; }
  // Bytes currently held back.
  size_t held() const { return held_.size(); }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace px
