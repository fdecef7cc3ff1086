#include "chat/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "chat/jinja_builtins.h"

namespace px::jinja {

namespace {

bool is_reserved(std::string_view name) {
  static constexpr std::string_view kReserved[] = {"and", "or", "not", "in", "is", "if", "else"};
  return std::find(std::begin(kReserved), std::end(kReserved), name) != std::end(kReserved);
}

// Sets a counter for the lifetime of a scope and restores it after.
struct SetFor {
  SetFor(int& counter, int value) : counter(counter), saved(counter) { counter = value; }
  ~SetFor() { counter = saved; }
  int& counter;
  int saved;
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string name) : toks_(std::move(tokens)), name_(std::move(name)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokenType::Eof) error(cur(), "unexpected '" + peek_tag_name() + "'");
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  const Token& advance() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(std::string_view op) const { return cur().type == TokenType::Op && cur().text == op; }
  bool is_name(std::string_view name) const { return cur().type == TokenType::Name && cur().text == name; }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::Eof:
        return "end of template";
      case TokenType::Text:
        return "text";
      case TokenType::VarBegin:
        return "'{{'";
      case TokenType::VarEnd:
        return "'}}'";
      case TokenType::BlockBegin:
        return "'{%'";
      case TokenType::BlockEnd:
        return "'%}'";
      case TokenType::String:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }

  [[noreturn]] void error(const Token& at, const std::string& message) const {
    throw TemplateError(location_prefix(name_, at.line, at.column) + message);
  }

  void expect_op(std::string_view op) {
    if (!accept_op(op)) error(cur(), fmt::format("expected '{}', found {}", op, describe(cur())));
  }
  std::string expect_identifier(std::string_view what) {
    if (cur().type != TokenType::Name) error(cur(), fmt::format("expected {}, found {}", what, describe(cur())));
    return advance().text;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) error(cur(), "expected '%}', found " + describe(cur()));
    advance();
  }
  std::string peek_tag_name() const {
    return cur().type == TokenType::BlockBegin && peek().type == TokenType::Name ? peek().text : describe(cur());
  }

  // Bounds recursion of the parser itself (nested blocks, parentheses, unary chains).
  struct DepthGuard {
    DepthGuard(Parser& p, const Token& at) : parser(p) {
      if (++parser.depth_ > kMaxParseDepth)
        parser.error(at, fmt::format("template nested deeper than {} levels", kMaxParseDepth));
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  ExprPtr node(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  // Adds a child, keeping the tree's height bounded (a + a + a ... builds a deep left spine).
  void add_child(Expr& parent, ExprPtr child) {
    if (child) {
      parent.depth = std::max(parent.depth, child->depth + 1);
      if (parent.depth > kMaxExprDepth) {
        throw TemplateError(location_prefix(name_, parent.line, parent.column) +
                            fmt::format("expression nested deeper than {} levels", kMaxExprDepth));
      }
    }
    parent.children.push_back(std::move(child));
  }
  ExprPtr binary(ExprKind kind, Op op, ExprPtr left, ExprPtr right, const Token& at) {
    auto e = node(kind, at);
    e->op = op;
    add_child(*e, std::move(left));
    add_child(*e, std::move(right));
    return e;
  }

  // ---- statements ----

  // Parses until a block tag named in `ends` (left unconsumed: cur() is its '{%') or the end.
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::Eof) {
        if (ends.size() > 0) {
          error(t, fmt::format("unexpected end of template, expected '{}'", *(ends.end() - 1)));
        }
        return body;
      }
      if (t.type == TokenType::Text) {
        auto s = stmt(StmtKind::Text, t);
        s->text = t.text;
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::VarBegin) {
        advance();
        auto s = stmt(StmtKind::Output, t);
        s->expr = parse_tuple(true);
        if (cur().type != TokenType::VarEnd) error(cur(), "expected '}}', found " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::BlockBegin) {
        const Token& name = peek();
        if (name.type != TokenType::Name) error(name, "expected a tag name after '{%', found " + describe(name));
        if (std::find(ends.begin(), ends.end(), name.text) != ends.end()) return body;
        const bool closer = name.text.rfind("end", 0) == 0 || name.text == "elif" || name.text == "else";
        if (closer && ends.size() > 0) {
          std::string expected;
          for (std::string_view e : ends) expected += (expected.empty() ? "'" : " or '") + std::string(e) + "'";
          error(t, fmt::format("unexpected '{}', expected {}", name.text, expected));
        }
        advance();
        body.push_back(parse_statement());
      } else {
        error(t, "unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // Consumes `{% name %}` for an end tag that parse_body stopped at.
  void end_tag(std::string_view name) {
    advance();  // '{%'
    if (!accept_name(name)) error(cur(), fmt::format("expected '{}'", name));
    expect_block_end();
  }

  std::unique_ptr<Stmt> parse_statement() {
    const Token& tag = cur();
    DepthGuard guard(*this, tag);
    const std::string name = advance().text;
    if (name == "if") return parse_if(tag);
    if (name == "for") return parse_for(tag);
    if (name == "set") return parse_set(tag);
    if (name == "macro") return parse_macro(tag);
    if (name == "call") return parse_call_block(tag);
    if (name == "filter") return parse_filter_block(tag);
    if (name == "with") return parse_with(tag);
    if (name == "generation") return parse_scoped(tag, "endgeneration");
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, fmt::format("'{}' outside of a for loop", name));
      auto s = stmt(name == "break" ? StmtKind::Break : StmtKind::Continue, tag);
      expect_block_end();
      return s;
    }
    static constexpr std::string_view kUnsupported[] = {"include", "extends", "block",      "import",
                                                        "from",    "do",      "autoescape", "trans"};
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), name) != std::end(kUnsupported)) {
      error(tag, fmt::format("the '{}' tag is not supported in chat templates", name));
    }
    if (name.rfind("end", 0) == 0 || name == "elif" || name == "else") {
      error(tag, fmt::format("unexpected '{}' (no open block it could close)", name));
    }
    error(tag, fmt::format("unknown tag '{}'", name));
  }

  std::unique_ptr<Stmt> parse_if(const Token& tag) {
    SetFor soft(soft_, soft_ + 1);
    auto s = stmt(StmtKind::If, tag);
    while (true) {
      IfBranch branch;
      branch.condition = parse_tuple(false);
      expect_block_end();
      branch.body = parse_body({"elif", "else", "endif"});
      s->branches.push_back(std::move(branch));
      advance();  // '{%'
      const std::string next = advance().text;
      if (next == "elif") continue;
      if (next == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"});
        end_tag("endif");
      } else {
        expect_block_end();
      }
      return s;
    }
  }

  std::vector<std::string> parse_targets(const Token& at) {
    std::vector<std::string> targets;
    const bool parens = accept_op("(");
    do {
      if (parens && is_op(")")) break;
      const std::string t = expect_identifier("a variable name");
      if (is_reserved(t)) error(at, fmt::format("cannot assign to '{}'", t));
      targets.push_back(t);
    } while (accept_op(","));
    if (parens) expect_op(")");
    return targets;
  }

  std::unique_ptr<Stmt> parse_for(const Token& tag) {
    auto s = stmt(StmtKind::For, tag);
    s->targets = parse_targets(tag);
    if (!accept_name("in")) error(cur(), "expected 'in' in for loop, found " + describe(cur()));
    s->expr = parse_tuple(false);
    if (accept_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) error(cur(), "recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    {
      SetFor hard(soft_, 0);  // a loop body is a new frame in Jinja, never a soft one
      s->body = parse_body({"else", "endfor"});
    }
    --loop_depth_;
    advance();  // '{%'
    if (advance().text == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"});
      end_tag("endfor");
    } else {
      expect_block_end();
    }
    return s;
  }

  std::unique_ptr<Stmt> parse_set(const Token& tag) {
    const std::string first = expect_identifier("a variable name");
    if (accept_op(".")) {
      auto s = stmt(StmtKind::Set, tag);
      s->targets = {first};
      s->attr = expect_identifier("an attribute name");
      expect_op("=");
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    std::vector<std::string> targets = {first};
    while (accept_op(",")) targets.push_back(expect_identifier("a variable name"));
    for (const auto& t : targets) {
      if (is_reserved(t)) error(tag, fmt::format("cannot assign to '{}'", t));
    }
    if (accept_op("=")) {
      auto s = stmt(StmtKind::Set, tag);
      s->targets = std::move(targets);
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (targets.size() != 1) error(cur(), "expected '=' after the names to assign");
    if (is_op("|")) error(cur(), "filters on {% set %} blocks are not supported");
    auto s = stmt(StmtKind::SetBlock, tag);
    s->targets = std::move(targets);
    expect_block_end();
    s->body = parse_body({"endset"});
    end_tag("endset");
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      const Token& at = cur();
      std::string param = expect_identifier("a parameter name");
      if (std::find(s.params.begin(), s.params.end(), param) != s.params.end()) {
        error(at, fmt::format("duplicate parameter '{}'", param));
      }
      s.params.push_back(std::move(param));
      if (accept_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else {
        if (!s.defaults.empty() && s.defaults.back() != nullptr) {
          error(at, "a parameter without a default follows one with a default");
        }
        s.defaults.push_back(nullptr);
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
  }

  std::unique_ptr<Stmt> parse_macro(const Token& tag) {
    auto s = stmt(StmtKind::Macro, tag);
    s->text = expect_identifier("a macro name");
    parse_params(*s);
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // `break` in a macro cannot leave a loop around the call
    SetFor hard(soft_, 0);
    s->body = parse_body({"endmacro"});
    loop_depth_ = saved_loops;
    end_tag("endmacro");
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(const Token& tag) {
    auto s = stmt(StmtKind::CallBlock, tag);
    if (is_op("(")) parse_params(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) error(tag, "{% call %} needs a macro call, like {% call m(x) %}");
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endcall"});
    loop_depth_ = saved_loops;
    end_tag("endcall");
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block(const Token& tag) {
    auto s = stmt(StmtKind::FilterBlock, tag);
    ExprPtr chain = node(ExprKind::BlockValue, tag);
    do {
      chain = parse_filter(std::move(chain));
    } while (accept_op("|"));
    s->expr = std::move(chain);
    expect_block_end();
    s->body = parse_body({"endfilter"});
    end_tag("endfilter");
    return s;
  }

  std::unique_ptr<Stmt> parse_with(const Token& tag) {
    auto s = stmt(StmtKind::With, tag);
    while (cur().type != TokenType::BlockEnd) {
      if (!s->assigns.empty()) expect_op(",");
      std::string target = expect_identifier("a variable name");
      expect_op("=");
      s->assigns.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    s->body = parse_body({"endwith"});
    end_tag("endwith");
    return s;
  }

  std::unique_ptr<Stmt> parse_scoped(const Token& tag, std::string_view end) {
    auto s = stmt(StmtKind::Scoped, tag);
    expect_block_end();
    s->body = parse_body({end});
    end_tag(end);
    return s;
  }

  // ---- expressions ----

  // Whether the expression starting here has a conditional `if` at its own bracket level.
  bool has_condexpr_ahead() const {
    int depth = 0;
    for (size_t i = pos_; i < toks_.size(); ++i) {
      const Token& t = toks_[i];
      if (t.type == TokenType::VarEnd || t.type == TokenType::BlockEnd || t.type == TokenType::Eof) return false;
      if (t.type == TokenType::Op) {
        if (t.text == "(" || t.text == "[" || t.text == "{") {
          ++depth;
        } else if (t.text == ")" || t.text == "]" || t.text == "}") {
          if (depth-- == 0) return false;
        } else if (t.text == "," && depth == 0) {
          return false;
        }
      } else if (t.type == TokenType::Name && t.text == "if" && depth == 0) {
        return true;
      }
    }
    return false;
  }

  // An expression, or several separated by commas (a tuple, as in `{% set a, b = 1, 2 %}`).
  ExprPtr parse_tuple(bool with_condexpr) {
    const Token& at = cur();
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto list = node(ExprKind::Tuple, at);
    add_child(*list, std::move(first));
    while (accept_op(",")) {
      if (cur().type == TokenType::BlockEnd || cur().type == TokenType::VarEnd || is_op(")")) break;
      add_child(*list, parse_expression(with_condexpr));
    }
    return list;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this, cur());
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    // Whether this expression is conditional shows only at its `if`; peek for one on this level.
    SetFor soft(soft_, soft_ + (has_condexpr_ahead() ? 1 : 0));
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const Token& at = advance();
      auto t = node(ExprKind::Ternary, at);
      ExprPtr cond = parse_or();
      ExprPtr otherwise;
      if (accept_name("else")) otherwise = parse_expression(true);
      add_child(*t, std::move(expr));
      add_child(*t, std::move(cond));
      add_child(*t, std::move(otherwise));
      expr = std::move(t);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& at = advance();
      left = binary(ExprKind::Or, Op::Add, std::move(left), parse_and(), at);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& at = advance();
      left = binary(ExprKind::And, Op::Add, std::move(left), parse_not(), at);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      const Token& at = advance();
      DepthGuard guard(*this, at);
      auto e = node(ExprKind::Unary, at);
      e->op = Op::Not;
      add_child(*e, parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      Op op;
      if (cur().type == TokenType::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                          cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        const std::string& t = cur().text;
        op = t == "=="   ? Op::Eq
             : t == "!=" ? Op::Ne
             : t == "<"  ? Op::Lt
             : t == "<=" ? Op::Le
             : t == ">"  ? Op::Gt
                         : Op::Ge;
        advance();
      } else if (is_name("in")) {
        op = Op::In;
        advance();
      } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
        op = Op::NotIn;
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(ExprKind::Compare, at);
        add_child(*cmp, std::move(first));
      }
      cmp->compare_ops.push_back(op);
      add_child(*cmp, parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& at = advance();
      left = binary(ExprKind::Binary, at.text == "+" ? Op::Add : Op::Sub, std::move(left), parse_concat(), at);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Token& at = advance();
      left = binary(ExprKind::Binary, Op::Concat, std::move(left), parse_math2(), at);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& at = advance();
      const Op op = at.text == "*" ? Op::Mul : at.text == "/" ? Op::Div : at.text == "//" ? Op::FloorDiv : Op::Mod;
      left = binary(ExprKind::Binary, op, std::move(left), parse_pow(), at);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& at = advance();
      left = binary(ExprKind::Binary, Op::Pow, std::move(left), parse_unary(true), at);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const Token& at = cur();
    DepthGuard guard(*this, at);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      advance();
      e = node(ExprKind::Unary, at);
      e->op = at.text == "-" ? Op::Neg : Op::Pos;
      add_child(*e, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filters_and_tests(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    if (t.type == TokenType::Name) {
      advance();
      auto e = node(ExprKind::Literal, t);
      if (t.text == "true" || t.text == "True") {
        e->value = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->value = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->value = Value::none();
      } else {
        e->kind = ExprKind::Name;
        e->name = t.text;
      }
      return e;
    }
    if (t.type == TokenType::String) {
      auto e = node(ExprKind::Literal, t);
      std::string s;
      while (cur().type == TokenType::String) s += advance().text;  // 'a' 'b' is 'ab'
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == TokenType::Int || t.type == TokenType::Float) {
      advance();
      auto e = node(ExprKind::Literal, t);
      e->value = t.type == TokenType::Int ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    if (accept_op("(")) {
      if (accept_op(")")) return node(ExprKind::Tuple, t);  // ()
      ExprPtr inner = parse_tuple(true);
      expect_op(")");
      return inner;
    }
    if (accept_op("[")) {
      auto e = node(ExprKind::List, t);
      while (!is_op("]")) {
        add_child(*e, parse_expression(true));
        if (!accept_op(",")) break;
      }
      expect_op("]");
      return e;
    }
    if (accept_op("{")) {
      auto e = node(ExprKind::Dict, t);
      while (!is_op("}")) {
        add_child(*e, parse_expression(true));
        expect_op(":");
        add_child(*e, parse_expression(true));
        if (!accept_op(",")) break;
      }
      expect_op("}");
      return e;
    }
    error(t, "expected an expression, found " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const Token& at = cur();
      if (accept_op(".")) {
        if (cur().type == TokenType::Int) {  // foo.0 is foo[0]
          auto g = node(ExprKind::GetItem, at);
          auto index = node(ExprKind::Literal, cur());
          index->value = Value(advance().int_value);
          add_child(*g, std::move(e));
          add_child(*g, std::move(index));
          e = std::move(g);
          continue;
        }
        auto g = node(ExprKind::GetAttr, at);
        g->name = expect_identifier("an attribute name after '.'");
        add_child(*g, std::move(e));
        e = std::move(g);
      } else if (accept_op("[")) {
        e = parse_subscript(std::move(e), at);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target, const Token& at) {
    ExprPtr bounds[3];
    int part = 0;
    bool is_slice = false;
    while (!is_op("]")) {
      if (accept_op(":")) {
        is_slice = true;
        if (++part > 2) error(cur(), "a slice takes at most start:stop:step");
        continue;
      }
      if (bounds[part]) error(cur(), "expected ':' or ']' in subscript, found " + describe(cur()));
      bounds[part] = parse_expression(true);
    }
    expect_op("]");
    if (!is_slice) {
      if (!bounds[0]) error(at, "empty subscript []");
      auto g = node(ExprKind::GetItem, at);
      add_child(*g, std::move(target));
      add_child(*g, std::move(bounds[0]));
      return g;
    }
    auto s = node(ExprKind::Slice, at);
    add_child(*s, std::move(target));
    for (auto& b : bounds) add_child(*s, std::move(b));
    return s;
  }

  // Appends `(args)` to `e`, whose children[0] is the callee or operand.
  void parse_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::Name && peek().type == TokenType::Op && peek().text == "=") {
        std::string key = advance().text;
        advance();  // '='
        ExprPtr value = parse_expression(true);
        e.depth = std::max(e.depth, value->depth + 1);
        e.kwargs.emplace_back(std::move(key), std::move(value));
      } else {
        if (!e.kwargs.empty()) error(cur(), "positional argument follows keyword argument");
        add_child(e, parse_expression(true));
      }
      if (!accept_op(",")) break;
    }
    expect_op(")");
    if (e.depth > kMaxExprDepth) {
      throw TemplateError(location_prefix(name_, e.line, e.column) +
                          fmt::format("expression nested deeper than {} levels", kMaxExprDepth));
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::Call, cur());
    add_child(*c, std::move(callee));
    parse_args(*c);
    return c;
  }

  ExprPtr parse_filter(ExprPtr operand) {
    const Token& at = cur();
    auto f = node(ExprKind::Filter, at);
    f->name = expect_identifier("a filter name after '|'");
    f->filter = find_filter(f->name);
    if (f->filter == nullptr && soft_ == 0) error(at, fmt::format("unknown filter '{}'", f->name));
    add_child(*f, std::move(operand));
    if (is_op("(")) parse_args(*f);
    return f;
  }

  ExprPtr parse_filters_and_tests(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        e = parse_filter(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_test(ExprPtr operand) {
    advance();  // 'is'
    const bool negated = accept_name("not");
    const Token& at = cur();
    auto t = node(ExprKind::Test, at);
    t->negated = negated;
    t->name = expect_identifier("a test name after 'is'");
    t->test = find_test(t->name);
    if (t->test == nullptr && soft_ == 0) error(at, fmt::format("unknown test '{}'", t->name));
    add_child(*t, std::move(operand));
    if (is_op("(")) {
      parse_args(*t);
    } else if ((cur().type == TokenType::Name && !is_reserved(cur().text)) || cur().type == TokenType::String ||
               cur().type == TokenType::Int || cur().type == TokenType::Float || is_op("[") || is_op("{")) {
      // `x is divisibleby 3`: one argument without parentheses.
      add_child(*t, parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::string name_;
  int depth_ = 0;
  int loop_depth_ = 0;
  // > 0 while parsing an if statement or a conditional expression: there, as in Jinja 3, an
  // unknown filter or test is an error only if that code runs (templates probe optional
  // filters with `{% if 'from_json' is filter %}`).
  int soft_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_template(std::string_view source, const LexOptions& options, std::string name) {
  auto program = std::make_unique<Program>();
  program->name = name;
  std::vector<Token> tokens = tokenize(source, options, name);
  Parser parser(std::move(tokens), std::move(name));
  program->body = parser.parse_all();
  return program;
}

}  // namespace px::jinja
