#include "server/chat_prompt.h"

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

std::string render_chat_prompt(const Tokenizer& tokenizer, const nlohmann::json& messages,
                               bool add_generation_prompt, const nlohmann::json& kwargs) {
  // TODO(jinja): swap this line for the model's template, e.g.
  //   if (auto t = tokenizer.chat_template()) return ChatTemplate(*t).render(messages, add_generation_prompt, kwargs);
  return render_chatml(messages, add_generation_prompt);
}

}  // namespace px::server
