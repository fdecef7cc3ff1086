#include "chat/chat_template.h"

namespace px {

ChatTemplate ChatTemplate::parse(std::string source, jinja::RenderLimits limits) {
  jinja::TemplateOptions options;
  options.name = "chat template";
  options.limits = limits;
  jinja::Template compiled = jinja::Template::parse(source, std::move(options));
  return ChatTemplate(std::move(source), std::move(compiled));
}

ChatTemplate ChatTemplate::from_tokenizer_config(const nlohmann::json& config, std::string_view variant) {
  if (!config.is_object() || !config.contains("chat_template")) {
    fail("tokenizer config has no \"chat_template\" field");
  }
  const auto& field = config["chat_template"];
  if (field.is_string()) return parse(field.get<std::string>());
  if (!field.is_array() || field.empty()) {
    fail("tokenizer config \"chat_template\" must be a string or a list of {{\"name\", \"template\"}}, got {}",
         field.type_name());
  }
  const nlohmann::json* chosen = nullptr;
  for (const auto& entry : field) {
    if (entry.is_object() && entry.value("name", "") == variant && entry.contains("template")) chosen = &entry;
  }
  if (chosen == nullptr) {
    if (variant != "default") fail("tokenizer config has no chat template named '{}'", variant);
    chosen = &field[0];
  }
  if (!chosen->contains("template") || !(*chosen)["template"].is_string()) {
    fail("tokenizer config chat template entry has no \"template\" string");
  }
  return parse((*chosen)["template"].get<std::string>());
}

namespace {

template <typename Json>
Json make_context(const Json& messages, bool add_generation_prompt, const Json& extra_context) {
  if (!messages.is_array()) fail("chat messages must be a JSON array, got {}", messages.type_name());
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) fail("chat message {} must be a JSON object, got {}", i, messages[i].type_name());
  }
  if (!extra_context.is_null() && !extra_context.is_object()) {
    fail("chat template extra context must be a JSON object, got {}", extra_context.type_name());
  }
  Json context = Json::object();
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  if (extra_context.is_object()) {
    for (auto it = extra_context.begin(); it != extra_context.end(); ++it) context[it.key()] = it.value();
  }
  context["messages"] = messages;
  context["add_generation_prompt"] = add_generation_prompt;
  return context;
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_context) const {
  return compiled_.render(make_context(messages, add_generation_prompt, extra_context));
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra_context) const {
  return compiled_.render(make_context(messages, add_generation_prompt, extra_context));
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_context) const {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!m.extra.is_null() && !m.extra.is_object()) {
      fail("chat message {}: extra fields must be a JSON object, got {}", i, m.extra.type_name());
    }
    nlohmann::ordered_json message = nlohmann::ordered_json::object();
    message["role"] = m.role;
    message["content"] = m.content;
    if (m.extra.is_object()) {
      for (auto it = m.extra.begin(); it != m.extra.end(); ++it) {
        if (it.key() != "role" && it.key() != "content") message[it.key()] = it.value();
      }
    }
    list.push_back(std::move(message));
  }
  return render(list, add_generation_prompt, extra_context);
}

}  // namespace px
