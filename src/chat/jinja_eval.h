#pragma once
// Renders a parsed template. Scoping follows Jinja: each for-loop iteration, macro call and
// {% with %} gets its own scope (so `set` inside a loop does not leak out; namespace() is the way
// to carry state), `if` blocks share their parent's scope.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja_ast.h"

namespace px::jinja {

// Bounds that turn a hostile or broken template into an error instead of a hang or a crash.
// Real templates scan the conversation inside their message loop (quadratic: ~1.1 million
// iterations for 1,500 messages), hence the generous iteration budget; a render at the limit
// takes a few seconds. 32 MiB of text is far beyond any context window.
struct RenderLimits {
  size_t max_output_bytes = 32u << 20;        // rendered text, and any one string built on the way
  uint64_t max_loop_iterations = 10'000'000;  // loop iterations, list items built and macro calls
  uint64_t max_text_bytes = 1ull << 30;       // all strings built, together
  double max_seconds = 10.0;                  // wall clock, the backstop for all other work
  int max_call_depth = 64;                    // nested macro calls (recursion)
};

class Scope {
 public:
  explicit Scope(std::shared_ptr<const Scope> parent = nullptr) : parent_(std::move(parent)) {}
  const Value* lookup(std::string_view name) const;
  void set(std::string name, Value value);

 private:
  std::shared_ptr<const Scope> parent_;
  std::vector<std::pair<std::string, Value>> vars_;  // few names per scope: a scan beats hashing
};

// What one render carries around: limits, counters, and where output goes.
class RenderState {
 public:
  RenderState(const RenderLimits& limits, std::string_view template_name)
      : limits_(limits),
        template_name_(template_name),
        budget_(limits.max_output_bytes, limits.max_text_bytes, limits.max_loop_iterations, limits.max_seconds),
        install_(&budget_) {}
  ~RenderState();  // empties every namespace made, breaking reference cycles among them
  RenderState(const RenderState&) = delete;
  RenderState& operator=(const RenderState&) = delete;

  const RenderLimits& limits() const { return limits_; }
  std::string_view template_name() const { return template_name_; }

  // Counts `n` units of work (loop iterations, list items, calls); faults past the limit.
  void count_work(uint64_t n = 1) { budget_.charge_iterations(n); }
  // Faults when a string of `bytes` would pass the output limit.
  void check_size(size_t bytes) const;
  size_t max_bytes() const { return limits_.max_output_bytes; }

  Value make_namespace(Dict initial);

 private:
  const RenderLimits& limits_;
  std::string_view template_name_;
  WorkBudget budget_;
  WorkBudget::Install install_;  // strings built anywhere on this thread charge budget_
  std::vector<std::shared_ptr<Dict>> namespaces_;
};

// Renders `program` with `context` (a dict of variables) and the globals. Throws TemplateError
// (or TemplateRaised for raise_exception) naming the line and column of what failed.
std::string render_program(const Program& program, const Value& context, const RenderLimits& limits);

}  // namespace px::jinja
