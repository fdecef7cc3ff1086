#pragma once
// Chat templates: turn a conversation into the prompt text a model was trained on, by rendering
// the model's Jinja chat template (tokenizer_config.json "chat_template", or GGUF
// "tokenizer.chat_template") the way Hugging Face's apply_chat_template does.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja.h"

namespace px {

struct ChatMessage {
  std::string role;
  std::string content;
  // Further fields of the message object (tool_calls, reasoning_content, name, ...): an object
  // or null. Its keys are merged into the message; role and content above win.
  nlohmann::ordered_json extra;
};

class ChatTemplate {
 public:
  // Throws jinja::TemplateError ("chat template line L, column C: ...") if it cannot be parsed.
  // Parse once and keep the object: rendering is cheap, parsing costs about a millisecond.
  static ChatTemplate parse(std::string source, jinja::RenderLimits limits = {});
  explicit ChatTemplate(std::string source, jinja::RenderLimits limits = {})
      : ChatTemplate(parse(std::move(source), limits)) {}

  // From a tokenizer_config.json object: "chat_template" is a string, or a list of
  // {"name", "template"} of which `variant` is chosen ("default" first, else the first one).
  static ChatTemplate from_tokenizer_config(const nlohmann::json& config, std::string_view variant = "default");

  // Renders `messages` (a JSON array of message objects). `extra_context` (a JSON object or
  // null) adds variables: bos_token, eos_token, tools, enable_thinking, ... As in transformers,
  // `tools` and `documents` are none unless given. Throws jinja::TemplateError naming line and
  // column, or jinja::TemplateRaised (what() is the template's own message) for raise_exception.
  // Pass ordered_json to keep the key order of tool schemas as the client sent them (tojson
  // prints keys in that order; nlohmann::json sorts them).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nullptr) const;
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const nlohmann::json& extra_context = nullptr) const;
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context = nullptr) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::string source, jinja::Template compiled)
      : source_(std::move(source)), compiled_(std::move(compiled)) {}
  std::string source_;
  jinja::Template compiled_;
};

}  // namespace px
