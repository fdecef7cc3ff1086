#include "chat/jinja_text.h"

#include "chat/jinja_value.h"

namespace px::jinja::text {

namespace {

// Length of the UTF-8 sequence starting at s[i], or 1 if it is not a valid sequence.
size_t sequence_length(std::string_view s, size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  size_t len = 1;
  if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
  } else if (lead >= 0xE0) {
    len = lead <= 0xEF ? 3 : 1;
  } else if (lead >= 0xC2) {
    len = 2;
  }
  if (len == 1 || i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

bool in_chars(char c, const std::string* chars) {
  return chars == nullptr ? is_space(c) : chars->find(c) != std::string::npos;
}

}  // namespace

std::vector<std::string_view> code_points(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = sequence_length(s, i);
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

size_t count_code_points(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += sequence_length(s, i)) ++n;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= '\x1c' && c <= '\x1f');
}

std::string_view strip(std::string_view s, const std::string* chars, bool left, bool right) {
  size_t begin = 0;
  size_t end = s.size();
  if (left) {
    while (begin < end && in_chars(s[begin], chars)) ++begin;
  }
  if (right) {
    while (end > begin && in_chars(s[end - 1], chars)) --end;
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep == nullptr) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && is_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        out.emplace_back(s.substr(i));  // Python keeps the remainder's trailing whitespace
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_space(s[j])) ++j;
      out.emplace_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  if (sep->empty()) fault("split(): empty separator");
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t at = s.find(*sep, start);
    if (at == std::string_view::npos) break;
    out.emplace_back(s.substr(start, at - start));
    start = at + sep->size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> reversed;
  if (sep == nullptr) {
    size_t end = s.size();
    while (true) {
      while (end > 0 && is_space(s[end - 1])) --end;
      if (end == 0) break;
      if (static_cast<int64_t>(reversed.size()) == maxsplit) {
        reversed.emplace_back(s.substr(0, end));
        break;
      }
      size_t begin = end;
      while (begin > 0 && !is_space(s[begin - 1])) --begin;
      reversed.emplace_back(s.substr(begin, end - begin));
      end = begin;
    }
  } else {
    if (sep->empty()) fault("rsplit(): empty separator");
    size_t end = s.size();
    while (static_cast<int64_t>(reversed.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      reversed.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    reversed.emplace_back(s.substr(0, end));
  }
  return {reversed.rbegin(), reversed.rend()};
}

std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count, size_t max_bytes) {
  std::string out;
  auto append = [&](std::string_view piece) {
    if (out.size() + piece.size() > max_bytes) fault("replace(): result exceeds {} bytes", max_bytes);
    out += piece;
  };
  int64_t done = 0;
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    for (std::string_view cp : code_points(s)) {
      if (count < 0 || done < count) {
        append(to);
        ++done;
      }
      append(cp);
    }
    if (count < 0 || done < count) append(to);
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(from, start);
    if (at == std::string_view::npos) break;
    append(s.substr(start, at - start));
    append(to);
    start = at + from.size();
    ++done;
  }
  append(s.substr(start));
  return out;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

}  // namespace px::jinja::text
