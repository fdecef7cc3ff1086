#include "server/completion_session.h"

#include "server/errors.h"
#include "server/sse.h"

namespace px::server {

using nlohmann::json;

CompletionSession::CompletionSession(std::shared_ptr<Engine> engine, ResponseContext context, bool logprobs,
                                     int prompt_tokens, std::vector<std::shared_ptr<RequestStream>> streams,
                                     ServerMetrics& metrics, Clock::time_point arrival)
    : engine_(std::move(engine)),
      context_(std::move(context)),
      logprobs_(logprobs),
      prompt_tokens_(prompt_tokens),
      metrics_(metrics),
      arrival_(arrival) {
  choices_.resize(streams.size());
  for (size_t i = 0; i < streams.size(); ++i) choices_[i].stream = std::move(streams[i]);
}

CompletionSession::~CompletionSession() { cancel(); }

void CompletionSession::cancel() {
  for (Choice& c : choices_) {
    if (!c.done && c.stream) c.stream->cancel();
  }
}

bool CompletionSession::all_done() const {
  for (const Choice& c : choices_) {
    if (!c.done) return false;
  }
  return true;
}

template <typename OnEvent>
bool CompletionSession::poll(std::chrono::milliseconds wait, OnEvent&& on_event) {
  bool any = false;
  StreamEvent event;
  auto drain = [&](int i, std::chrono::milliseconds first_wait) {
    Choice& c = choices_[i];
    auto w = first_wait;
    while (!c.done && c.stream->next(event, w)) {
      any = true;
      w = std::chrono::milliseconds(0);
      record(i, event);
      on_event(i, event);
    }
  };
  for (int i = 0; i < int(choices_.size()); ++i) drain(i, std::chrono::milliseconds(0));
  if (any) return true;
  // Nothing ready: sleep on the first unfinished choice (the others are picked up next time).
  for (int i = 0; i < int(choices_.size()); ++i) {
    if (!choices_[i].done) {
      drain(i, wait);
      break;
    }
  }
  return any;
}

void CompletionSession::record(int index, const StreamEvent& event) {
  Choice& c = choices_[index];
  const auto now = Clock::now();
  if (!event.tokens.empty()) {
    if (!c.seen_token) {
      metrics_.time_to_first_token.observe(std::chrono::duration<double>(now - arrival_).count());
      c.seen_token = true;
    } else {
      // Tokens that arrive together share the gap since the previous ones.
      const double gap = std::chrono::duration<double>(now - c.last_token).count() / double(event.tokens.size());
      for (size_t k = 0; k < event.tokens.size(); ++k) metrics_.inter_token_latency.observe(gap);
    }
    c.last_token = now;
  }
  c.result.text += event.text;
  if (logprobs_) c.result.tokens.insert(c.result.tokens.end(), event.tokens.begin(), event.tokens.end());
  c.result.completion_tokens = std::max(c.result.completion_tokens, event.completion_tokens);
  if (event.finish != FinishReason::None) {
    c.done = true;
    c.result.finish = event.finish;
    if (event.finish == FinishReason::Error && error_.empty()) {
      error_ = event.error.empty() ? "generation failed" : event.error;
    }
    metrics_.request_duration.observe(std::chrono::duration<double>(now - arrival_).count());
  }
}

bool CompletionSession::collect(std::chrono::milliseconds wait) {
  if (all_done()) return true;
  poll(wait, [](int, const StreamEvent&) {});
  return all_done();
}

json CompletionSession::response() const {
  if (!error_.empty()) return error_body(error_, "server_error");
  std::vector<ChoiceResult> results;
  for (const Choice& c : choices_) results.push_back(c.result);
  return full_response(context_, results, prompt_tokens_, logprobs_, engine_->tokenizer());
}

void CompletionSession::append_event_sse(std::string& out, int index, const StreamEvent& event) {
  const bool chat = context_.endpoint == Endpoint::Chat;
  const Tokenizer& tokenizer = engine_->tokenizer();
  Choice& c = choices_[index];
  const bool has_logprobs = logprobs_ && !event.tokens.empty();
  if (!event.text.empty() || has_logprobs) {
    json lp = nullptr;
    if (chat) {
      if (has_logprobs) lp = {{"content", chat_logprobs_content(event.tokens, tokenizer)}, {"refusal", nullptr}};
      json delta = json::object();
      delta["content"] = event.text;
      out += sse_data(chat_chunk(context_, index, std::move(delta), std::move(lp), nullptr));
    } else {
      if (has_logprobs) lp = completion_logprobs(event.tokens, tokenizer, c.text_offset);
      out += sse_data(completion_chunk(context_, index, event.text, std::move(lp), nullptr));
    }
  }
  if (event.finish == FinishReason::None) return;
  if (event.finish == FinishReason::Error) {
    // Mid-stream there is no status code left to set: OpenAI's clients read an error frame.
    out += sse_data(error_body(error_, "server_error"));
    return;
  }
  const json finish = finish_reason_json(event.finish);
  if (chat) {
    out += sse_data(chat_chunk(context_, index, json::object(), nullptr, finish));
  } else {
    out += sse_data(completion_chunk(context_, index, "", nullptr, finish));
  }
}

bool CompletionSession::next_sse(std::string& out, std::chrono::milliseconds wait) {
  if (sent_done_) return false;
  if (!sent_roles_) {
    sent_roles_ = true;
    if (context_.endpoint == Endpoint::Chat) {
      for (int i = 0; i < int(choices_.size()); ++i) {
        out += sse_data(chat_chunk(context_, i, {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}},
                                   nullptr, nullptr));
      }
    }
  }
  if (error_.empty()) {
    poll(wait, [&](int index, const StreamEvent& event) { append_event_sse(out, index, event); });
  }
  if (!all_done() && error_.empty()) return true;
  // Finished (or failed: the other choices are cancelled by the destructor).
  if (context_.include_usage && error_.empty()) {
    int completion_tokens = 0;
    for (const Choice& c : choices_) completion_tokens += c.result.completion_tokens;
    out += sse_data(usage_chunk(context_, prompt_tokens_, completion_tokens));
  }
  out += sse_done();
  sent_done_ = true;
  return false;
}

}  // namespace px::server
