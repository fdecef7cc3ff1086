#pragma once
// Server-sent events framing as OpenAI streams it: one "data: {json}\n\n" per chunk and a
// final "data: [DONE]\n\n".
#include <nlohmann/json.hpp>

#include <string>

#include "server/errors.h"

namespace px::server {

inline std::string sse_data(const nlohmann::json& chunk) { return "data: " + dump_json(chunk) + "\n\n"; }
inline std::string sse_done() { return "data: [DONE]\n\n"; }

}  // namespace px::server
