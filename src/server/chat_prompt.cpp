#include "server/chat_prompt.h"

#include <memory>
#include <mutex>
#include <unordered_map>

#include "chat/chat_template.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace px::server {

std::string message_content_text(const nlohmann::json& content) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) fail("message content must be a string or an array of text parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      fail("message content parts must be {{\"type\": \"text\", \"text\": string}}");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

std::string render_chatml(const nlohmann::json& messages, bool add_generation_prompt) {
  std::string prompt;
  for (const auto& message : messages) {
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      fail("each message needs a string \"role\"");
    }
    prompt += "<|im_start|>";
    prompt += message["role"].get<std::string>();
    prompt += '\n';
    prompt += message_content_text(message.value("content", nlohmann::json()));
    prompt += "<|im_end|>\n";
  }
  if (add_generation_prompt) prompt += "<|im_start|>assistant\n";
  return prompt;
}

namespace {

// Parsing a template takes about a millisecond; a server renders the same one for every
// request, so parsed templates are kept by source text.
std::shared_ptr<const ChatTemplate> parsed_template(const std::string& source) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const ChatTemplate>> cache;
  std::lock_guard lock(mutex);
  auto& entry = cache[source];
  if (!entry) entry = std::make_shared<const ChatTemplate>(ChatTemplate::parse(source));
  return entry;
}

std::string special_text(const Tokenizer& tokenizer, int32_t id) {
  return id >= 0 && id < tokenizer.n_vocab() ? tokenizer.token_text(id) : std::string();
}

}  // namespace

std::string render_chat_prompt(const Tokenizer& tokenizer, const nlohmann::json& messages,
                               bool add_generation_prompt, const nlohmann::json& kwargs) {
  const std::optional<std::string> source = tokenizer.chat_template();
  if (!source || source->empty()) return render_chatml(messages, add_generation_prompt);
  // Templates of text models expect string content: text parts are joined first.
  nlohmann::json normalized = nlohmann::json::array();
  for (const auto& message : messages) {
    if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
      fail("each message needs a string \"role\"");
    }
    nlohmann::json m = message;
    if (m.contains("content") && m["content"].is_array()) m["content"] = message_content_text(m["content"]);
    normalized.push_back(std::move(m));
  }
  nlohmann::json context = {{"bos_token", special_text(tokenizer, tokenizer.bos_id())},
                            {"eos_token", special_text(tokenizer, tokenizer.eos_id())}};
  if (kwargs.is_object()) {
    for (const auto& [key, value] : kwargs.items()) context[key] = value;
  }
  return parsed_template(*source)->render(normalized, add_generation_prompt, context);
}

}  // namespace px::server
