#pragma once
// Text helpers with Python string semantics over UTF-8: lengths, indices and slices count code
// points; case mapping is ASCII-only (chat templates upper/lower roles and keywords).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace px::jinja::text {

// The string cut into code points; a byte that is not valid UTF-8 stands alone.
std::vector<std::string_view> code_points(std::string_view s);
size_t count_code_points(std::string_view s);
// Appends code point `cp` as UTF-8 (no validation of surrogates: Python allows them in str).
void append_utf8(std::string& out, uint32_t cp);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
bool is_space(char c);  // Python's str.isspace() for ASCII

// str.strip / lstrip / rstrip; `chars` == nullptr strips whitespace.
std::string_view strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split(sep, maxsplit); `sep` == nullptr splits on runs of whitespace and drops empty parts.
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
// str.replace(old, new, count); count < 0 replaces all. Faults when the result exceeds max_bytes.
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count, size_t max_bytes);
// str.splitlines() for "\n", "\r\n" and "\r".
std::vector<std::string_view> split_lines(std::string_view s);

}  // namespace px::jinja::text
