#include "chat/jinja_eval.h"

#include <cmath>
#include <limits>

#include "chat/jinja_builtins.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_ops.h"

namespace px::jinja {

// ---- Scope ----

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
    for (auto it = s->vars_.rbegin(); it != s->vars_.rend(); ++it) {
      if (it->first == name) return &it->second;
    }
  }
  return nullptr;
}

void Scope::set(std::string name, Value value) {
  for (auto& [k, v] : vars_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::move(name), std::move(value));
}

// ---- RenderState ----

RenderState::~RenderState() {
  // Namespaces may hold each other (or themselves); emptying them all while this list still
  // owns every one frees them without recursion and without leaking cycles.
  for (auto& ns : namespaces_) ns->clear();
}

void RenderState::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) fault("template output exceeds {} bytes", limits_.max_output_bytes);
}

Value RenderState::make_namespace(Dict initial) {
  namespaces_.push_back(std::make_shared<Dict>(std::move(initial)));
  return Value::ns(namespaces_.back());
}

namespace {

enum class Flow { Normal, Break, Continue };

// Combined nesting of statements and expressions being evaluated, macro calls included.
constexpr int kMaxEvalDepth = 1500;

class Renderer {
 public:
  Renderer(const Program& program, RenderState& state) : program_(program), state_(state) {}

  std::string render(const Value& context) {
    auto root = std::make_shared<Scope>();
    add_globals(state_, *root);
    if (context.is_dict()) {
      for (const auto& [k, v] : context.as_dict().entries()) root->set(k, v);
    } else if (!context.is_undefined() && !context.is_none()) {
      throw TemplateError(
          fmt::format("{}: the render context must be a JSON object, got {}", program_.name, context.type_name()));
    }
    std::string out;
    exec_body(program_.body, root, out);
    return out;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Renderer& r) : renderer(r) {
      if (++renderer.depth_ > kMaxEvalDepth) fault("template nests or recurses deeper than {} levels", kMaxEvalDepth);
    }
    ~DepthGuard() { --renderer.depth_; }
    Renderer& renderer;
  };

  [[noreturn]] void located(int line, int column, const char* message) const {
    throw TemplateError(location_prefix(program_.name, line, column) + message);
  }

  void append(std::string& out, std::string_view s) const {
    state_.check_size(out.size() + s.size());
    out += s;
  }

  // ---- statements ----

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
    for (const auto& stmt : body) {
      const Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    try {
      DepthGuard guard(*this);
      return exec_inner(s, scope, out);
    } catch (const Fault& f) {
      located(s.line, s.column, f.what());
    }
  }

  Flow exec_inner(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::Text:
        append(out, s.text);
        return Flow::Normal;
      case StmtKind::Output:
        append(out, eval(*s.expr, *scope).str(state_.max_bytes()));
        return Flow::Normal;
      case StmtKind::If:
        for (const auto& branch : s.branches) {
          if (eval(*branch.condition, *scope).truthy()) return exec_body(branch.body, scope, out);
        }
        return exec_body(s.else_body, scope, out);
      case StmtKind::For:
        exec_for(s, scope, out);
        return Flow::Normal;
      case StmtKind::Set:
        exec_set(s, *scope);
        return Flow::Normal;
      case StmtKind::SetBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        scope->set(s.targets[0], Value(std::move(captured)));
        return Flow::Normal;
      }
      case StmtKind::Macro:
        scope->set(s.text, make_macro(s, scope));
        return Flow::Normal;
      case StmtKind::CallBlock:
        append(out, exec_call_block(s, scope).str(state_.max_bytes()));
        return Flow::Normal;
      case StmtKind::FilterBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        block_values_.push_back(Value(std::move(captured)));
        Value result = eval(*s.expr, *scope);
        block_values_.pop_back();
        append(out, result.str(state_.max_bytes()));
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto inner = std::make_shared<Scope>(scope);
        for (const auto& [name, expr] : s.assigns) inner->set(name, eval(*expr, *inner));
        return exec_body(s.body, inner, out);
      }
      case StmtKind::Scoped:
        return exec_body(s.body, scope, out);
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  static void bind_targets(const std::vector<std::string>& targets, const Value& item, Scope& scope) {
    if (targets.size() == 1) {
      scope.set(targets[0], item);
      return;
    }
    if (!item.is_list()) fault("cannot unpack a '{}' into {} names", item.type_name(), targets.size());
    const auto& parts = item.as_list();
    if (parts.size() != targets.size()) {
      fault("cannot unpack {} values into {} names", parts.size(), targets.size());
    }
    for (size_t i = 0; i < parts.size(); ++i) scope.set(targets[i], parts[i]);
  }

  void exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.expr, *scope), "for loop");
    if (s.cond) {
      // Jinja filters first, so loop.length and loop.last count only the kept items.
      std::vector<Value> kept;
      for (Value& item : items) {
        state_.count_work();
        Scope probe(scope);
        bind_targets(s.targets, item, probe);
        if (eval(*s.cond, probe).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_body(s.else_body, std::make_shared<Scope>(scope), out);
      return;
    }
    const auto n = static_cast<int64_t>(items.size());
    // One loop.cycle for the whole loop, reading the current index (saves a closure per item).
    auto index = std::make_shared<int64_t>(0);
    const Value cycle = Value::callable("loop.cycle", [index](const CallArgs& args) {
      if (args.positional.empty()) fault("loop.cycle() needs at least one value");
      return args.positional[static_cast<size_t>(*index) % args.positional.size()];
    });
    for (int64_t i = 0; i < n; ++i) {
      state_.count_work();
      *index = i;
      auto iteration = std::make_shared<Scope>(scope);
      bind_targets(s.targets, items[static_cast<size_t>(i)], *iteration);
      iteration->set("loop", loop_object(items, i, cycle));
      if (exec_body(s.body, iteration, out) == Flow::Break) break;
    }
  }

  // loop.depth counts recursive-loop levels in Jinja; without recursive loops it is always 1.
  static Value loop_object(const std::vector<Value>& items, int64_t i, const Value& cycle) {
    const auto n = static_cast<int64_t>(items.size());
    Dict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(1));
    loop.set("depth0", Value(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value());
    loop.set("cycle", cycle);
    return Value::dict(std::move(loop));
  }

  void exec_set(const Stmt& s, Scope& scope) {
    Value value = eval(*s.expr, scope);
    if (s.attr.empty()) {
      if (s.targets.size() == 1) {
        scope.set(s.targets[0], std::move(value));
      } else {
        bind_targets(s.targets, value, scope);
      }
      return;
    }
    const Value* target = scope.lookup(s.targets[0]);
    if (target == nullptr || !target->is_namespace()) {
      fault("cannot set '{}.{}': only namespace() objects take attribute assignment, '{}' is {}", s.targets[0], s.attr,
            s.targets[0], target == nullptr ? "undefined" : target->type_name());
    }
    target->as_namespace().set(s.attr, std::move(value));
  }

  // A macro keeps a weak reference to the scope it was defined in: the scope holds the macro,
  // and a strong reference back would be a cycle that is never freed.
  Value make_macro(const Stmt& s, const std::shared_ptr<Scope>& scope) {
    std::weak_ptr<const Scope> defined_in = scope;
    return Value::callable(s.text, [this, &s, defined_in](const CallArgs& args) {
      auto parent = defined_in.lock();
      if (!parent) fault("macro '{}' called after the scope that defined it ended", s.text);
      return call_macro(s, parent, args, nullptr);
    });
  }

  Value call_macro(const Stmt& s, const std::shared_ptr<const Scope>& parent, const CallArgs& args,
                   const Value* caller) {
    state_.count_work();  // a macro calling itself twice would otherwise double its work per level
    if (++call_depth_ > state_.limits().max_call_depth) {
      --call_depth_;
      fault("macro calls nested deeper than {} (unbounded recursion?)", state_.limits().max_call_depth);
    }
    struct Restore {
      int& depth;
      ~Restore() { --depth; }
    } restore{call_depth_};

    auto scope = std::make_shared<Scope>(parent);
    std::vector<Value> varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < s.params.size()) {
        scope->set(s.params[i], args.positional[i]);
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    Dict kwargs;
    std::vector<bool> bound(s.params.size(), false);
    for (size_t i = 0; i < args.positional.size() && i < s.params.size(); ++i) bound[i] = true;
    for (const auto& [name, value] : args.named) {
      if (name == "caller") {
        scope->set("caller", value);
        continue;
      }
      bool matched = false;
      for (size_t i = 0; i < s.params.size(); ++i) {
        if (s.params[i] == name) {
          if (bound[i]) fault("macro '{}' got multiple values for argument '{}'", s.text, name);
          scope->set(name, value);
          bound[i] = matched = true;
        }
      }
      if (!matched) kwargs.set(name, value);
    }
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (bound[i]) continue;
      // Defaults are evaluated at call time and may use the parameters before them.
      scope->set(s.params[i], s.defaults[i] ? eval(*s.defaults[i], *scope) : Value());
    }
    scope->set("varargs", Value::tuple(std::move(varargs)));
    scope->set("kwargs", Value::dict(std::move(kwargs)));
    if (caller != nullptr) scope->set("caller", *caller);
    std::string out;
    exec_body(s.body, scope, out);
    return Value(std::move(out));
  }

  Value exec_call_block(const Stmt& s, const std::shared_ptr<Scope>& scope) {
    const Expr& call = *s.expr;
    Value callee = eval(*call.children[0], *scope);
    CallArgs args = eval_args(call, *scope);
    Value caller = Value::callable("caller", [this, &s, scope](const CallArgs& caller_args) {
      return call_macro(s, scope, caller_args, nullptr);
    });
    args.named.emplace_back("caller", caller);
    if (!callee.is_callable()) fault("{{% call %}} needs a macro, got {}", callee.type_name());
    return callee.as_callable().fn(args);
  }

  // ---- expressions ----

  Value eval(const Expr& e, const Scope& scope) {
    try {
      DepthGuard guard(*this);
      return eval_inner(e, scope);
    } catch (const Fault& f) {
      located(e.line, e.column, f.what());
    }
  }

  CallArgs eval_args(const Expr& e, const Scope& scope) {
    CallArgs args;
    for (size_t i = 1; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
    for (const auto& [name, expr] : e.kwargs) args.named.emplace_back(name, eval(*expr, scope));
    return args;
  }

  Value eval_inner(const Expr& e, const Scope& scope) {
    switch (e.kind) {
      case ExprKind::Literal:
        return e.value;
      case ExprKind::Name: {
        const Value* v = scope.lookup(e.name);
        return v != nullptr ? *v : Value();
      }
      case ExprKind::List:
      case ExprKind::Tuple: {
        std::vector<Value> items;
        items.reserve(e.children.size());
        for (const auto& c : e.children) items.push_back(eval(*c, scope));
        state_.count_work(items.size());
        return e.kind == ExprKind::Tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      case ExprKind::Dict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value key = eval(*e.children[i], scope);
          if (!key.is_string()) fault("dict keys must be strings here, got {}", key.type_name());
          d.set(key.as_string(), eval(*e.children[i + 1], scope));
        }
        return Value::dict(std::move(d));
      }
      case ExprKind::Unary:
        return unary_op(e.op, eval(*e.children[0], scope));
      case ExprKind::Binary: {
        Value left = eval(*e.children[0], scope);
        return binary_op(state_, e.op, left, eval(*e.children[1], scope));
      }
      case ExprKind::And: {
        Value left = eval(*e.children[0], scope);
        return left.truthy() ? eval(*e.children[1], scope) : left;
      }
      case ExprKind::Or: {
        Value left = eval(*e.children[0], scope);
        return left.truthy() ? left : eval(*e.children[1], scope);
      }
      case ExprKind::Compare: {
        Value left = eval(*e.children[0], scope);
        for (size_t i = 0; i < e.compare_ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], scope);
          if (!compare_op(e.compare_ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::Ternary:
        if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
        return e.children[2] ? eval(*e.children[2], scope) : Value();
      case ExprKind::GetAttr:
        return get_attribute(state_, eval(*e.children[0], scope), e.name);
      case ExprKind::GetItem: {
        Value target = eval(*e.children[0], scope);
        return get_item(state_, target, eval(*e.children[1], scope));
      }
      case ExprKind::Slice: {
        Value target = eval(*e.children[0], scope);
        Value bounds[3];
        for (int i = 0; i < 3; ++i) {
          if (e.children[static_cast<size_t>(i) + 1]) bounds[i] = eval(*e.children[static_cast<size_t>(i) + 1], scope);
        }
        return slice(state_, target, bounds[0], bounds[1], bounds[2]);
      }
      case ExprKind::Call:
        return eval_call(e, scope);
      case ExprKind::Filter: {
        if (e.filter == nullptr) fault("unknown filter '{}'", e.name);
        Value operand = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, scope);
        return e.filter(state_, operand, args);
      }
      case ExprKind::Test: {
        if (e.test == nullptr) fault("unknown test '{}'", e.name);
        Value operand = eval(*e.children[0], scope);
        CallArgs args = eval_args(e, scope);
        return Value(e.test(state_, operand, args) != e.negated);
      }
      case ExprKind::BlockValue:
        return block_values_.back();
    }
    return Value();
  }

  Value eval_call(const Expr& e, const Scope& scope) {
    const Expr& callee_expr = *e.children[0];
    Value callee = eval(callee_expr, scope);
    if (!callee.is_callable()) {
      if (callee_expr.kind == ExprKind::Name && callee.is_undefined()) fault("'{}' is undefined", callee_expr.name);
      if (callee_expr.kind == ExprKind::GetAttr && callee.is_undefined()) {
        Value owner = eval(*callee_expr.children[0], scope);
        fault("'{}' has no method '{}'", owner.type_name(), callee_expr.name);
      }
      fault("a '{}' value is not callable", callee.type_name());
    }
    CallArgs args = eval_args(e, scope);
    return callee.as_callable().fn(args);
  }

  const Program& program_;
  RenderState& state_;
  int depth_ = 0;
  int call_depth_ = 0;
  std::vector<Value> block_values_;
};

}  // namespace

std::string render_program(const Program& program, const Value& context, const RenderLimits& limits) {
  RenderState state(limits, program.name);
  Renderer renderer(program, state);
  try {
    return renderer.render(context);
  } catch (const Fault& f) {
    // Faults are located where they happen; one escaping here came from outside any statement.
    throw TemplateError(fmt::format("{}: {}", program.name, f.what()));
  }
}

}  // namespace px::jinja
