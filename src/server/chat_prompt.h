#pragma once
// Turns OpenAI chat messages into the prompt text the model was trained on.
//
// A model with a chat template (tokenizer.chat_template) gets it rendered by our Jinja
// interpreter, with bos_token / eos_token and `kwargs` (chat_template_kwargs, e.g.
// enable_thinking) as variables. A model without one gets ChatML:
//   <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
#include <nlohmann/json.hpp>

#include <string>

namespace px {

class Tokenizer;

namespace server {

// `messages`: an array of {"role": string, "content": string | [{"type":"text","text":...}] |
// null, ...}. Throws px::Error for a message without a role or with content of another shape.
std::string render_chat_prompt(const Tokenizer& tokenizer, const nlohmann::json& messages,
                               bool add_generation_prompt, const nlohmann::json& kwargs);

// The ChatML rendering (the fallback above), exposed for tests and for models whose template
// cannot be rendered.
std::string render_chatml(const nlohmann::json& messages, bool add_generation_prompt);

// A message's content as plain text: a string as is, text parts concatenated, null as "".
// Throws px::Error for other shapes (and for parts that are not text).
std::string message_content_text(const nlohmann::json& content);

}  // namespace server
}  // namespace px
