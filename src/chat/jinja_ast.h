#pragma once
// Syntax tree of a parsed template. One node struct per family (expressions, statements) with a
// kind tag keeps the tree plain data; the evaluator switches on the kind. Filters and tests are
// resolved to functions while parsing, so an unknown name fails when the template is loaded.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace px::jinja {

class RenderState;
using FilterFn = Value (*)(RenderState&, const Value& operand, const CallArgs& args);
using TestFn = bool (*)(RenderState&, const Value& operand, const CallArgs& args);

enum class ExprKind {
  Literal,     // value
  Name,        // name
  List,        // children: items
  Tuple,       // children: items; a list that prints as (a, b)
  Dict,        // children: key0, value0, key1, value1, ...
  Unary,       // op, children[0]
  Binary,      // op, children[0..1]
  And,         // children[0..1], short-circuit
  Or,          // children[0..1], short-circuit
  Compare,     // children[0..n], compare_ops[n]: chained like Python (a < b < c)
  Ternary,     // children: then, condition, else (else may be null: undefined)
  GetAttr,     // children[0], name: `a.b` tries the attribute, then the key
  GetItem,     // children[0..1]: `a[b]` tries the key, then the attribute
  Slice,       // children: target, start, stop, step (each bound may be null)
  Call,        // children: callee, positional args...; kwargs
  Filter,      // children: operand, positional args...; kwargs; filter; name
  Test,        // children: operand, positional args...; test; name; negated
  BlockValue,  // the rendered body of a {% filter %} block
};

enum class Op { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat, Neg, Pos, Not, Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
  ExprKind kind = ExprKind::Literal;
  int line = 1;
  int column = 1;
  int depth = 1;  // height of the subtree; bounded so evaluation cannot exhaust the stack
  Op op = Op::Add;
  bool negated = false;
  std::string name;
  Value value;
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  std::vector<Op> compare_ops;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};
using ExprPtr = std::unique_ptr<Expr>;

enum class StmtKind {
  Text,         // text
  Output,       // expr
  If,           // branches, else_body
  For,          // targets, expr (iterable), cond (inline filter), body, else_body
  Set,          // targets (one name, or several to unpack) or targets[0].attr; expr
  SetBlock,     // targets[0], body
  Macro,        // name, params, defaults, body
  CallBlock,    // expr (the call), params/defaults (of caller), body
  FilterBlock,  // expr (filter chain over a BlockValue), body
  With,         // assigns, body
  Scoped,       // body: {% generation %} and the like, rendered as they stand
  Break,
  Continue,
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct IfBranch {
  ExprPtr condition;
  Body body;
};

struct Stmt {
  StmtKind kind = StmtKind::Text;
  int line = 1;
  int column = 1;
  std::string text;  // Text: the text; Macro: its name
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::string> targets;
  std::string attr;  // Set: `set ns.attr = ...`
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null where none
  std::vector<IfBranch> branches;
  std::vector<std::pair<std::string, ExprPtr>> assigns;
  Body body;
  Body else_body;
};

struct Program {
  std::string name;  // used in error messages ("chat template line 3, column 5: ...")
  Body body;
};

}  // namespace px::jinja
