#pragma once
// Errors of the OpenAI-compatible API. Request handling throws ApiError; the router turns it
// into OpenAI's JSON error shape {"error": {"message", "type", "param", "code"}} with the HTTP
// status it carries.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace px::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string message, std::string param = {},
           std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)),
        param_(std::move(param)), code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }  // "" -> null
  const std::string& code() const { return code_; }    // "" -> null

 private:
  int status_;
  std::string type_, param_, code_;
};

// 400 invalid_request_error, naming the offending parameter.
ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});

// {"error": {"message", "type", "param", "code"}}; empty param / code become null.
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = {}, const std::string& code = {});
nlohmann::json error_body(const ApiError& error);

// The error type OpenAI uses for an HTTP status (400 -> invalid_request_error, 401 ->
// authentication_error, 404 -> not_found_error, 429 -> rate_limit_error, 5xx -> server_error).
const char* error_type_for_status(int status);

// Serializes JSON for the wire; bytes that are not valid UTF-8 become U+FFFD instead of
// throwing (generated text is sanitized already; this is the last line of defence).
std::string dump_json(const nlohmann::json& value);

}  // namespace px::server
