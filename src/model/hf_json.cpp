#include "model/hf_json.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

#include "core/error.h"

namespace px {
namespace {


// nlohmann's messages start with "[json.exception.parse_error.101] "; keep the readable part.
std::string_view strip_exception_id(std::string_view message) {
  if (!message.empty() && message.front() == '[') {
    const auto close = message.find("] ");
    if (close != std::string_view::npos) message.remove_prefix(close + 2);
  }
  return message;
}

}  // namespace

std::string escape_for_message(std::string_view s, size_t max_shown) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > max_shown) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

nlohmann::json parse_strict_json(std::string_view text, std::string_view file,
                                 std::string_view what, int max_depth) {
  using json = nlohmann::json;
  // One set of keys per open object; arrays push nothing, so track which kind is open.
  std::vector<std::set<std::string>> open_objects;
  std::vector<bool> open_is_object;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (static_cast<int>(open_is_object.size()) >= max_depth) {
          fail("{}: {} nests objects and arrays more than {} levels deep", file, what, max_depth);
        }
        open_is_object.push_back(event == json::parse_event_t::object_start);
        if (open_is_object.back()) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open_is_object.empty()) {
          if (open_is_object.back()) open_objects.pop_back();
          open_is_object.pop_back();
        }
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second) {
            fail("{}: {} has the key \"{}\" twice in one object (duplicate keys are not allowed)",
                 file, what, escape_for_message(key));
          }
        }
        break;
      case json::parse_event_t::value: break;
    }
    (void)depth;
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    fail("{}: {} is not valid JSON: {}", file, what, escape_for_message(strip_exception_id(e.what()), 1000));
  } catch (const json::exception& e) {
    fail("{}: {} could not be parsed: {}", file, what, escape_for_message(strip_exception_id(e.what()), 1000));
  }
}

std::string read_small_file(const std::string& path, size_t max_bytes, std::string_view kind) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail("{}: cannot open {}: {}", path, kind, errno_text(errno));
  std::string text;
  char buffer[64 * 1024];
  while (true) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), f.get());
    if (n == 0) break;
    if (text.size() + n > max_bytes) {
      fail("{}: {} is larger than {} bytes; it is not what it should be", path, kind, max_bytes);
    }
    text.append(buffer, n);
  }
  if (std::ferror(f.get())) fail("{}: cannot read {}: {}", path, kind, errno_text(errno));
  return text;
}

}  // namespace px
