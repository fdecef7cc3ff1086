#include "server/openai_protocol.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "server/chat_prompt.h"

namespace px::server {
namespace {

using nlohmann::json;

const char* type_name(const json& value) {
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

// The field, or nullptr when it is absent or null (clients send null for "not set").
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void wrong_type(const char* name, const char* expected, const json& value) {
  throw invalid_request(fmt::format("'{}' must be {}, got {}", name, expected, type_name(value)), name);
}

std::optional<double> number_param(const json& body, const char* name, double lo, double hi) {
  const json* value = field(body, name);
  if (!value) return std::nullopt;
  if (!value->is_number()) wrong_type(name, "a number", *value);
  const double x = value->get<double>();
  if (!(x >= lo && x <= hi)) {
    throw invalid_request(fmt::format("'{}' = {} is out of range: expected {} to {}", name, x, lo, hi), name);
  }
  return x;
}

// Integers may arrive as 5 or 5.0 (JavaScript clients); fractions are rejected.
std::optional<int64_t> integer_param(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* value = field(body, name);
  if (!value) return std::nullopt;
  if (!value->is_number()) wrong_type(name, "an integer", *value);
  int64_t x;
  if (value->is_number_unsigned()) {
    const uint64_t u = value->get<uint64_t>();
    x = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(u);
  } else if (value->is_number_integer()) {
    x = value->get<int64_t>();
  } else {
    const double d = value->get<double>();
    if (d != std::floor(d) || std::fabs(d) > 9e15) wrong_type(name, "an integer", *value);
    x = static_cast<int64_t>(d);
  }
  if (x < lo || x > hi) {
    throw invalid_request(fmt::format("'{}' = {} is out of range: expected {} to {}", name, x, lo, hi), name);
  }
  return x;
}

std::optional<bool> bool_param(const json& body, const char* name) {
  const json* value = field(body, name);
  if (!value) return std::nullopt;
  if (!value->is_boolean()) wrong_type(name, "a boolean", *value);
  return value->get<bool>();
}

std::optional<std::string> string_param(const json& body, const char* name) {
  const json* value = field(body, name);
  if (!value) return std::nullopt;
  if (!value->is_string()) wrong_type(name, "a string", *value);
  return value->get<std::string>();
}

std::vector<int32_t> token_ids(const json& array, const char* name) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json& id : array) {
    if (!id.is_number_integer()) wrong_type(name, "an array of token ids (integers)", id);
    const int64_t v = id.get<int64_t>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
      throw invalid_request(fmt::format("'{}' holds token id {}, which is not a valid id", name, v), name);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void parse_stop(const json& body, RequestOptions& options) {
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      options.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > size_t(kMaxStopStrings)) {
        throw invalid_request(
            fmt::format("'stop' has {} strings; at most {} are allowed", stop->size(), kMaxStopStrings), "stop");
      }
      for (const json& s : *stop) {
        if (!s.is_string()) wrong_type("stop", "a string or an array of strings", s);
        options.stop.push_back(s.get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *stop);
    }
  }
  if (const json* ids = field(body, "stop_token_ids")) {  // vLLM's extension
    if (!ids->is_array()) wrong_type("stop_token_ids", "an array of integers", *ids);
    options.stop_tokens = token_ids(*ids, "stop_token_ids");
  }
}

// Everything the two endpoints share: model, sampling, limits, n, streaming.
void parse_common(const json& body, ParsedRequest& r) {
  if (!body.is_object()) throw invalid_request("the request body must be a JSON object");
  if (auto model = string_param(body, "model")) r.model = *model;
  string_param(body, "user");  // accepted and ignored, but it must be a string

  SamplingParams& s = r.options.sampling;
  // OpenAI's defaults: plain sampling at temperature 1 with no filters.
  s.temperature = 1.0f;
  s.top_k = 0;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  if (auto t = number_param(body, "temperature", 0, 2)) s.temperature = float(*t);
  if (auto p = number_param(body, "top_p", 0, 1)) {
    // top_p 0 keeps only the most likely token (the sampler wants top_p > 0).
    if (*p == 0) s.top_k = 1;
    else s.top_p = float(*p);
  }
  if (auto k = integer_param(body, "top_k", -1, std::numeric_limits<int32_t>::max())) {
    if (s.top_k != 1) s.top_k = *k <= 0 ? 0 : int32_t(*k);  // -1 (vLLM) and 0 both mean off
  }
  if (auto m = number_param(body, "min_p", 0, 1)) s.min_p = float(*m);
  if (auto p = number_param(body, "presence_penalty", -2, 2)) s.presence_penalty = float(*p);
  if (auto f = number_param(body, "frequency_penalty", -2, 2)) s.frequency_penalty = float(*f);
  if (auto rp = number_param(body, "repetition_penalty", 0, 10)) {
    if (*rp <= 0) throw invalid_request("'repetition_penalty' must be > 0", "repetition_penalty");
    s.repetition_penalty = float(*rp);
  }
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) wrong_type("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
    r.seed_given = true;
  }

  constexpr int64_t kMaxTokensLimit = std::numeric_limits<int32_t>::max();
  std::optional<int64_t> max_tokens = integer_param(body, "max_tokens", std::numeric_limits<int64_t>::min(), kMaxTokensLimit);
  if (r.endpoint == Endpoint::Chat) {
    if (auto m = integer_param(body, "max_completion_tokens", std::numeric_limits<int64_t>::min(), kMaxTokensLimit)) {
      max_tokens = m;
    }
  }
  if (max_tokens) {
    if (*max_tokens < 0) {
      throw invalid_request(fmt::format("'max_tokens' = {} is invalid: expected an integer >= 0", *max_tokens),
                            "max_tokens");
    }
    r.options.max_tokens = int(*max_tokens);
    r.max_tokens_given = true;
  }

  parse_stop(body, r.options);
  if (auto n = integer_param(body, "n", 1, kMaxChoices)) r.n = int(*n);
  if (auto stream = bool_param(body, "stream")) r.stream = *stream;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    if (auto usage = bool_param(*so, "include_usage")) r.include_usage = *usage;
  }
  if (auto ignore = bool_param(body, "ignore_eos")) r.options.ignore_eos = *ignore;
}

json normalize_message(const json& message, size_t index) {
  const std::string where = fmt::format("messages[{}]", index);
  if (!message.is_object()) {
    throw invalid_request(fmt::format("'{}' must be an object, got {}", where, type_name(message)), where);
  }
  auto role = message.find("role");
  if (role == message.end() || !role->is_string()) {
    throw invalid_request(fmt::format("'{}.role' must be a string", where), where + ".role");
  }
  static const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool", "function"};
  bool known = false;
  for (const char* r : kRoles) known = known || *role == r;
  if (!known) {
    throw invalid_request(
        fmt::format("'{}.role' = '{}' is not one of system, developer, user, assistant, tool, function",
                    where, role->get<std::string>()),
        where + ".role");
  }
  json out = message;
  try {
    out["content"] = message_content_text(message.value("content", json()));
  } catch (const Error& e) {
    throw invalid_request(fmt::format("'{}.content': {}", where, e.what()), where + ".content");
  }
  return out;
}

}  // namespace

json parse_json_body(const std::string& body) {
  // nlohmann parses without recursing, but a copy or a dump of the result recurses per level:
  // the depth is bounded here, before anything holds the value. `depth` counts the containers
  // around the one that starts.
  const auto bounded = [](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw invalid_request(fmt::format("the request body nests objects and arrays more than {} levels deep", kMaxJsonDepth));
    }
    return true;
  };
  json value;
  try {
    value = json::parse(body, bounded);
  } catch (const json::exception& e) {
    throw invalid_request(fmt::format("the request body is not valid JSON: {}", e.what()));
  }
  if (!value.is_object()) {
    throw invalid_request(fmt::format("the request body must be a JSON object, got {}", type_name(value)));
  }
  return value;
}

ParsedRequest parse_chat_request(const json& body) {
  ParsedRequest r;
  r.endpoint = Endpoint::Chat;
  parse_common(body, r);

  const json* messages = field(body, "messages");
  if (!messages) throw invalid_request("'messages' is required", "messages");
  if (!messages->is_array()) wrong_type("messages", "an array", *messages);
  if (messages->empty()) throw invalid_request("'messages' must hold at least one message", "messages");
  for (size_t i = 0; i < messages->size(); ++i) r.messages.push_back(normalize_message((*messages)[i], i));

  if (auto agp = bool_param(body, "add_generation_prompt")) r.add_generation_prompt = *agp;
  if (const json* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) wrong_type("chat_template_kwargs", "an object", *kwargs);
    r.chat_template_kwargs = *kwargs;
  }

  const bool logprobs = bool_param(body, "logprobs").value_or(false);
  const auto top = integer_param(body, "top_logprobs", 0, kMaxChatTopLogprobs);
  if (top && *top > 0 && !logprobs) {
    throw invalid_request("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
  }
  r.options.logprobs = logprobs;
  r.options.top_logprobs = logprobs ? int(top.value_or(0)) : 0;
  return r;
}

ParsedRequest parse_completion_request(const json& body) {
  ParsedRequest r;
  r.endpoint = Endpoint::Completions;
  parse_common(body, r);
  if (!r.max_tokens_given) r.options.max_tokens = kDefaultCompletionMaxTokens;

  const json* prompt = field(body, "prompt");
  if (!prompt) throw invalid_request("'prompt' is required", "prompt");
  auto single_prompt_only = [] {
    return invalid_request("only one prompt per request is supported; send one request per prompt", "prompt");
  };
  if (prompt->is_string()) {
    r.prompt_text = prompt->get<std::string>();
  } else if (prompt->is_array()) {
    if (prompt->empty()) throw invalid_request("'prompt' is an empty array", "prompt");
    const json& first = (*prompt)[0];
    if (first.is_string()) {
      if (prompt->size() != 1) throw single_prompt_only();
      r.prompt_text = first.get<std::string>();
    } else if (first.is_array()) {
      if (prompt->size() != 1) throw single_prompt_only();
      r.prompt_tokens = token_ids(first, "prompt");
      if (r.prompt_tokens.empty()) throw invalid_request("'prompt' is an empty array of token ids", "prompt");
    } else {
      r.prompt_tokens = token_ids(*prompt, "prompt");
    }
  } else {
    wrong_type("prompt", "a string, an array of one string, or an array of token ids", *prompt);
  }
  if (bool_param(body, "echo").value_or(false)) {
    throw invalid_request("'echo' is not supported", "echo");
  }
  if (auto logprobs = integer_param(body, "logprobs", 0, kMaxCompletionLogprobs)) {
    r.options.logprobs = true;
    r.options.top_logprobs = int(*logprobs);
  }
  return r;
}

}  // namespace px::server
