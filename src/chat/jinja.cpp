#include "chat/jinja.h"

#include "chat/jinja_parser.h"

namespace px::jinja {

Template Template::parse(std::string_view source, TemplateOptions options) {
  std::shared_ptr<const Program> program = parse_template(source, options.lex, options.name);
  return Template(std::move(program), std::move(options));
}

std::string Template::render(const Value& context) const { return render_program(*program_, context, options_.limits); }

namespace {
template <typename Json>
Value context_value(const Json& context, const std::string& name) {
  if (!context.is_object() && !context.is_null()) {
    throw TemplateError(fmt::format("{}: the render context must be a JSON object, got {}", name, context.type_name()));
  }
  try {
    return Value::from_json(context);
  } catch (const Fault& f) {
    throw TemplateError(fmt::format("{}: {}", name, f.what()));
  }
}
}  // namespace

std::string Template::render(const nlohmann::json& context) const {
  return render(context_value(context, options_.name));
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  return render(context_value(context, options_.name));
}

}  // namespace px::jinja
