#pragma once
// Errors of the Jinja interpreter. All derive from px::Error, so a caller that only wants a
// message catches px::Error; one that must tell a template's own raise_exception() apart (an
// API server answers it with 400 and the message) catches TemplateRaised.
#include <string>
#include <utility>

#include "core/error.h"

namespace px::jinja {

// A template that cannot be parsed or rendered; the message names the line and column.
class TemplateError : public px::Error {
 public:
  using px::Error::Error;
};

// The template called raise_exception(message); what() is that message, unchanged.
class TemplateRaised : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

// A fault found while evaluating, not yet tied to a template position: the evaluator catches it
// at the innermost expression and rethrows it as a TemplateError naming the line and column.
class Fault : public px::Error {
 public:
  using px::Error::Error;
};

template <typename... Args>
[[noreturn]] void fault(fmt::format_string<Args...> format, Args&&... args) {
  throw Fault(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace px::jinja
