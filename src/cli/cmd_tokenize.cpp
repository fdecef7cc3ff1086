// `parallax tokenize -m FILE`: the token ids of stdin's text, space-separated on one line.
// Needs only the tokenizer.ggml.* metadata, so vocabulary-only GGUF files work.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace px::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  bool add_special = false;
  bool parse_special = false;
};

void run_tokenize(const TokenizeOptions& options) {
  // A GGUF file, or a Hugging Face tokenizer.json (or the directory holding it).
  const bool hf = std::filesystem::is_directory(options.model) || options.model.ends_with(".json");
  const auto tokenizer = hf ? Tokenizer::from_hf(options.model) : Tokenizer::from_gguf(*GgufFile::open(options.model));
  const std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  const std::vector<int32_t> ids = tokenizer->encode(text, options.add_special, options.parse_special);
  fmt::print("{}\n", fmt::join(ids, " "));
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Print the token ids of the text on stdin, space-separated on one line");
  cmd->add_option("-m,--model", options->model,
                  "GGUF file with the tokenizer (tokenizer.ggml.*; tensors are not needed), or a Hugging Face "
                  "tokenizer.json or its directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_flag("--add-special", options->add_special,
                "Add BOS/EOS as the vocabulary asks (off: no BOS)");
  cmd->add_flag("--parse-special", options->parse_special,
                "Turn control-token texts such as <|eot_id|> into their tokens (off: plain text)");
  cmd->callback([options] { run_tokenize(*options); });
}

}  // namespace px::cli
