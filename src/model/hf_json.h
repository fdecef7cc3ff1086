#pragma once
// JSON as Hugging Face model directories use it (safetensors headers, the shard index,
// config.json), parsed strictly: a duplicate key is an error rather than silently keeping
// one of the values (two readers could then disagree about the same file), and nesting
// depth is bounded.
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace px {

// Parses `text`; any problem throws px::Error naming `file` and `what` ("header", ...).
nlohmann::json parse_strict_json(std::string_view text, std::string_view file,
                                 std::string_view what, int max_depth);

// `s` with control and non-ASCII bytes escaped (\xNN) and cut at `max_shown` bytes: names
// and messages that come from a file stay readable and printable in an error.
std::string escape_for_message(std::string_view s, size_t max_shown = 96);

// Reads a whole text file of at most `max_bytes`; `kind` names it in errors ("config file").
std::string read_small_file(const std::string& path, size_t max_bytes, std::string_view kind);

}  // namespace px
