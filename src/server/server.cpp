#include "server/server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "runtime/engine.h"
#include "server/chat_prompt.h"
#include "server/completion_session.h"
#include "server/errors.h"
#include "server/metrics.h"
#include "server/openai_protocol.h"
#include "server/openai_response.h"
#include "tokenizer/tokenizer.h"

namespace px::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  ServerMetrics metrics;
  std::mutex engine_mutex;
  std::shared_ptr<Engine> engine;
  std::thread thread;
  std::atomic<int> port{0};
  std::mutex stop_mutex;
  bool stopped = false;

  explicit Impl(ServerOptions opts) : options(std::move(opts)) {}

  void setup();
  std::shared_ptr<Engine> current_engine() {
    std::lock_guard lock(engine_mutex);
    return engine;
  }
  std::shared_ptr<Engine> require_engine();
  void check_auth(const httplib::Request& req) const;
  std::string served_name(const Engine& engine) const;
  void check_model(const std::string& requested, const Engine& engine) const;
  std::vector<int32_t> prompt_tokens(const ParsedRequest& r, const Engine& engine) const;
  void handle_completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void handle_models(const httplib::Request& req, httplib::Response& res);
  void handle_model(const httplib::Request& req, httplib::Response& res);
  void stream_response(httplib::Response& res, std::shared_ptr<CompletionSession> session);
  void whole_response(httplib::Response& res, std::shared_ptr<CompletionSession> session);

  // Wraps a handler: ApiError becomes its JSON error, anything else a 500.
  template <typename Handler>
  httplib::Server::Handler guarded(Handler handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        handler(req, res);
      } catch (const ApiError& e) {
        if (e.status() == 429 || e.status() == 503) {
          res.set_header("Retry-After", std::to_string(options.retry_after_s));
        }
        res.status = e.status();
        res.set_content(dump_json(error_body(e)), "application/json");
      } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", req.method, req.path, e.what());
        res.status = 500;
        res.set_content(dump_json(error_body(e.what(), "server_error")), "application/json");
      }
    };
  }
};

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

// Content providers run inside httplib's write loop, where an exception would end the
// process: log it and drop the connection instead.
template <typename Body>
httplib::ContentProviderWithoutLength provider(Body body) {
  return [body](size_t, httplib::DataSink& sink) {
    try {
      return body(sink);
    } catch (const std::exception& e) {
      spdlog::error("while sending a response: {}", e.what());
      return false;
    }
  };
}

std::string default_error_message(const httplib::Request& req, int status) {
  switch (status) {
    case 404: return fmt::format("no route for {} {}", req.method, req.path);
    case 413: return "the request body is larger than the server accepts";
    case 400: return "malformed HTTP request";
    default: return fmt::format("HTTP error {}", status);
  }
}

}  // namespace

std::shared_ptr<Engine> Server::Impl::require_engine() {
  auto e = current_engine();
  if (!e) throw ApiError(503, "server_error", "the model is still loading; retry shortly", "", "model_loading");
  return e;
}

void Server::Impl::check_auth(const httplib::Request& req) const {
  if (options.api_key.empty()) return;
  const std::string expected = "Bearer " + options.api_key;
  const std::string got = req.get_header_value("Authorization");
  // Compare every byte whatever the mismatch, so timing tells nothing about the key.
  unsigned diff = got.size() != expected.size();
  for (size_t i = 0; i < got.size() && i < expected.size(); ++i) diff |= unsigned(got[i] ^ expected[i]);
  if (diff != 0) {
    throw ApiError(401, "invalid_request_error",
                   got.empty() ? "no API key given: send the header 'Authorization: Bearer <key>'"
                               : "incorrect API key provided",
                   "", "invalid_api_key");
  }
}

std::string Server::Impl::served_name(const Engine& engine) const {
  return options.model_name.empty() ? engine.model_id() : options.model_name;
}

void Server::Impl::check_model(const std::string& requested, const Engine& engine) const {
  if (requested.empty() || requested == served_name(engine) || requested == engine.model_id()) return;
  for (const std::string& alias : options.model_aliases) {
    if (requested == alias) return;
  }
  throw ApiError(404, "invalid_request_error",
                 fmt::format("the model '{}' does not exist; this server serves '{}'", requested,
                             served_name(engine)),
                 "model", "model_not_found");
}

std::vector<int32_t> Server::Impl::prompt_tokens(const ParsedRequest& r, const Engine& engine) const {
  const Tokenizer& tokenizer = engine.tokenizer();
  if (r.endpoint == Endpoint::Completions && !r.prompt_text) return r.prompt_tokens;
  std::string text;
  if (r.endpoint == Endpoint::Chat) {
    try {
      text = render_chat_prompt(tokenizer, r.messages, r.add_generation_prompt, r.chat_template_kwargs);
    } catch (const Error& e) {
      throw invalid_request(fmt::format("cannot render the chat prompt: {}", e.what()), "messages");
    }
  } else {
    text = *r.prompt_text;
  }
  // BOS only (never the EOS some vocabularies append), and not twice when the text has it.
  std::vector<int32_t> tokens = tokenizer.encode(text, /*add_special=*/false, /*parse_special=*/true);
  const int32_t bos = tokenizer.bos_id();
  if (tokenizer.add_bos() && bos >= 0 && (tokens.empty() || tokens.front() != bos)) {
    tokens.insert(tokens.begin(), bos);
  }
  return tokens;
}

void Server::Impl::handle_completion(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  const auto arrival = Clock::now();
  check_auth(req);
  std::shared_ptr<Engine> engine = require_engine();
  const json body = parse_json_body(req.body);
  ParsedRequest r = endpoint == Endpoint::Chat ? parse_chat_request(body) : parse_completion_request(body);
  check_model(r.model, *engine);

  const std::vector<int32_t> prompt = prompt_tokens(r, *engine);
  const char* prompt_param = endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (prompt.empty()) throw invalid_request("the prompt is empty", prompt_param);
  const int64_t n_ctx = engine->context_size();
  if (int64_t(prompt.size()) >= n_ctx) {
    throw invalid_request(
        fmt::format("this model's maximum context length is {} tokens, but the prompt has {} tokens "
                    "(prompt and completion must fit together); shorten the prompt",
                    n_ctx, prompt.size()),
        prompt_param, "context_length_exceeded");
  }
  if (!r.max_tokens_given && endpoint == Endpoint::Chat) r.options.max_tokens = int(n_ctx - int64_t(prompt.size()));
  if (!r.seed_given) r.options.sampling.seed = std::random_device{}() | (uint64_t(std::random_device{}()) << 32);

  std::vector<std::shared_ptr<RequestStream>> streams;
  auto cancel_all = [&] {
    for (auto& s : streams) s->cancel();
  };
  try {
    for (int i = 0; i < r.n; ++i) {
      RequestOptions choice = r.options;
      choice.stream_id = uint64_t(i);
      choice.timeout = options.request_timeout;
      streams.push_back(engine->submit(prompt, std::move(choice)));
    }
  } catch (const QueueFullError& e) {
    cancel_all();
    throw ApiError(429, "rate_limit_error", fmt::format("the server is busy: {}", e.what()), "", "queue_full");
  } catch (const InvalidRequestError& e) {
    cancel_all();
    throw invalid_request(e.what());
  } catch (const UnavailableError& e) {
    cancel_all();
    throw ApiError(503, "server_error", e.what(), "", "no_pipeline");
  } catch (...) {
    cancel_all();
    throw;
  }

  ResponseContext context;
  context.endpoint = endpoint;
  context.id = make_response_id(endpoint);
  context.created = static_cast<int64_t>(std::time(nullptr));
  context.model = served_name(*engine);
  context.include_usage = r.stream && r.include_usage;
  auto session = std::make_shared<CompletionSession>(engine, std::move(context), r.options.logprobs,
                                                     int(prompt.size()), std::move(streams), metrics, arrival);
  if (r.stream) stream_response(res, std::move(session));
  else whole_response(res, std::move(session));
}

void Server::Impl::stream_response(httplib::Response& res, std::shared_ptr<CompletionSession> session) {
  res.set_header("Cache-Control", "no-cache");
  const auto poll = options.poll_interval;
  res.set_chunked_content_provider(
      "text/event-stream",
      provider([session, poll](httplib::DataSink& sink) {
        // A client that went away ends its requests instead of generating for nobody.
        if (!sink.is_writable()) {
          session->cancel();
          return false;
        }
        std::string out;
        const bool more = session->next_sse(out, poll);
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          session->cancel();
          return false;
        }
        if (!more) sink.done();
        return true;
      }),
      [session](bool success) {
        if (!success) session->cancel();
      });
}

void Server::Impl::whole_response(httplib::Response& res, std::shared_ptr<CompletionSession> session) {
  // Sent chunked even though it is one JSON document: while it waits the provider keeps
  // checking that the client is still there, and cancels the generation when it is not.
  const auto poll = options.poll_interval;
  res.set_chunked_content_provider(
      "application/json",
      provider([session, poll](httplib::DataSink& sink) {
        if (!sink.is_writable()) {
          session->cancel();
          return false;
        }
        if (!session->collect(poll)) return true;
        const std::string body = dump_json(session->response());
        if (!sink.write(body.data(), body.size())) return false;
        sink.done();
        return true;
      }),
      [session](bool success) {
        if (!success) session->cancel();
      });
}

void Server::Impl::handle_models(const httplib::Request& req, httplib::Response& res) {
  check_auth(req);
  auto engine = require_engine();
  json model = {{"id", served_name(*engine)},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "parallax"},
                {"max_model_len", engine->context_size()}};
  send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
}

void Server::Impl::handle_model(const httplib::Request& req, httplib::Response& res) {
  check_auth(req);
  auto engine = require_engine();
  check_model(req.matches[1].str(), *engine);
  send_json(res, 200,
            {{"id", served_name(*engine)}, {"object", "model"}, {"created", 0}, {"owned_by", "parallax"}});
}

void Server::Impl::setup() {
  const int threads = std::max(1, options.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http.set_payload_max_length(options.max_body_bytes);
  // SO_REUSEADDR (restart while old connections linger) but not httplib's default
  // SO_REUSEPORT, which would let a second server silently share the port.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.set_keep_alive_timeout(options.keep_alive_timeout_s);
  http.set_read_timeout(options.read_timeout_s, 0);
  http.set_write_timeout(options.write_timeout_s, 0);

  http.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              handle_completion(req, res, Endpoint::Chat);
            }));
  http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              handle_completion(req, res, Endpoint::Completions);
            }));
  http.Get("/v1/models", guarded([this](const httplib::Request& req, httplib::Response& res) {
             handle_models(req, res);
           }));
  http.Get("/v1/models/(.+)", guarded([this](const httplib::Request& req, httplib::Response& res) {
             handle_model(req, res);
           }));
  http.Get("/v1/cluster", guarded([this](const httplib::Request& req, httplib::Response& res) {
             check_auth(req);
             if (!options.cluster_info) throw ApiError(404, "not_found_error", "this node is not part of a swarm");
             res.set_content(options.cluster_info(), "application/json");
           }));
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (current_engine()) send_json(res, 200, {{"status", "ok"}});
    else send_json(res, 503, {{"status", "loading"}});
  });
  http.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& res) {
             auto engine = current_engine();
             EngineStats stats;
             if (engine) stats = engine->stats();
             res.set_content(metrics.render(engine ? &stats : nullptr), "text/plain; version=0.0.4");
           }));

  // Statuses httplib sets itself (unknown route 404, oversized body 413, bad HTTP 400) get
  // OpenAI's error shape too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_content(dump_json(error_body(default_error_message(req, res.status), error_type_for_status(res.status))),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body(message, "server_error"));
  });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) { impl_->setup(); }

Server::~Server() { stop(); }

void Server::set_engine(std::shared_ptr<Engine> engine) {
  std::lock_guard lock(impl_->engine_mutex);
  impl_->engine = std::move(engine);
}

int Server::bind() {
  const std::string& host = impl_->options.host;
  const int wanted = impl_->options.port;
  int port = -1;
  if (wanted == 0) {
    port = impl_->http.bind_to_any_port(host);
  } else if (impl_->http.bind_to_port(host, wanted)) {
    port = wanted;
  }
  if (port <= 0) {
    fail("cannot listen on {}:{}: the address is in use, not local, or not permitted", host, wanted);
  }
  impl_->port = port;
  return port;
}

bool Server::listen() { return impl_->http.listen_after_bind(); }

int Server::start() {
  const int port = bind();
  impl_->thread = std::thread([this] {
    if (!listen()) spdlog::error("the HTTP listener on port {} stopped with an error", impl_->port.load());
  });
  // stop() is a no-op until httplib marks itself running: wait for that, so a start() that
  // returned can always be stopped.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!impl_->http.is_running() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!impl_->http.is_running()) fail("the HTTP listener on port {} did not start", port);
  return port;
}

void Server::stop() {
  {
    std::lock_guard lock(impl_->stop_mutex);
    if (!impl_->stopped && impl_->http.is_running()) {
      impl_->http.stop();
      impl_->stopped = true;
    }
  }
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
}

int Server::port() const { return impl_->port; }

ServerMetrics& Server::metrics() { return impl_->metrics; }

}  // namespace px::server
