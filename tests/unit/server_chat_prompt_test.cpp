// Chat prompts: the model's own Jinja template when it has one, ChatML otherwise.
#include <gtest/gtest.h>

#include "core/error.h"
#include "server/chat_prompt.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_vocabs.h"

namespace px {
namespace {

std::shared_ptr<Tokenizer> tokenizer_with_template(std::optional<std::string> chat_template) {
  Vocab vocab = test_vocabs::make_bpe_vocab({});
  vocab.chat_template = std::move(chat_template);
  return Tokenizer::from_vocab(std::move(vocab));
}

const nlohmann::json kMessages = nlohmann::json::parse(R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}
])");

TEST(ServerChatPrompt, RendersTheModelsTemplateWithKwargs) {
  auto tokenizer = tokenizer_with_template(
      "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}[assistant]{% if think %}<think>{% endif %}{% endif %}");
  EXPECT_EQ(server::render_chat_prompt(*tokenizer, kMessages, true, nlohmann::json::object()),
            "[system]Be brief.[user]Hi there[assistant]");
  EXPECT_EQ(server::render_chat_prompt(*tokenizer, kMessages, true, {{"think", true}}),
            "[system]Be brief.[user]Hi there[assistant]<think>");
  EXPECT_EQ(server::render_chat_prompt(*tokenizer, kMessages, false, nullptr), "[system]Be brief.[user]Hi there");
}

TEST(ServerChatPrompt, FallsBackToChatMlWithoutATemplate) {
  auto tokenizer = tokenizer_with_template(std::nullopt);
  EXPECT_EQ(server::render_chat_prompt(*tokenizer, kMessages, true, nullptr),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ServerChatPrompt, TemplateErrorsAreClearErrors) {
  auto raising = tokenizer_with_template(
      "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}");
  try {
    server::render_chat_prompt(*raising, kMessages, true, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("first message must be from the user"), std::string::npos) << e.what();
  }
  auto broken = tokenizer_with_template("{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}");
  EXPECT_THROW(server::render_chat_prompt(*broken, kMessages, true, nullptr), Error);
}

}  // namespace
}  // namespace px
