#pragma once
// A Jinja-subset template engine for LLM chat templates: parse once, render many times with a
// JSON context. Semantics follow Python's Jinja2 as Hugging Face transformers configures it
// (trim_blocks, lstrip_blocks, transformers' tojson, raise_exception, strftime_now, loop
// controls), with missing attributes and keys rendering as empty (Jinja's default Undefined).
//
//   auto t = px::jinja::Template::parse("{% for m in messages %}{{ m.role }}{% endfor %}");
//   std::string s = t.render(nlohmann::json{{"messages", ...}});
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_error.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_lexer.h"

namespace px::jinja {

struct TemplateOptions {
  std::string name = "template";  // starts every error message: "<name> line 3, column 7: ..."
  LexOptions lex;                 // trim_blocks and lstrip_blocks on, as Hugging Face has them
  RenderLimits limits;
};

class Template {
 public:
  // Throws TemplateError naming line and column for templates it cannot parse, including
  // unknown filters, tests and tags.
  static Template parse(std::string_view source, TemplateOptions options = {});

  // `context` must be a JSON object (or null); its keys become the template's variables.
  // Throws TemplateError (TemplateRaised for raise_exception) naming the line and column.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;  // keeps key order for tojson
  std::string render(const Value& context) const;                   // a Dict value, or undefined

  const TemplateOptions& options() const { return options_; }

 private:
  Template(std::shared_ptr<const Program> program, TemplateOptions options)
      : program_(std::move(program)), options_(std::move(options)) {}
  std::shared_ptr<const Program> program_;  // immutable: renders may run on many threads at once
  TemplateOptions options_;
};

}  // namespace px::jinja
