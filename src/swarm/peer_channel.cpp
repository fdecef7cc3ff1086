#include "swarm/peer_channel.h"

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpc/support/log.h>
#include <grpcpp/support/channel_arguments.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string_view>

#include "swarm/peer_tls.h"

namespace px::swarm {
namespace {

// A stream whose peer vanished without closing its TCP connection is noticed within
// kKeepaliveTime + kKeepaliveTimeout instead of the kernel's retransmission timeout.
constexpr int kKeepaliveTimeMs = 20'000;
constexpr int kKeepaliveTimeoutMs = 10'000;

const char* status_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

// gRPC's own log goes to stderr; its TLS layer reports every refused or probing handshake
// there as an error, which our verifier already reports (once, with the reason). The rest
// keeps its severity, through spdlog.
void log_from_grpc(gpr_log_func_args* args) {
  const std::string_view message = args->message ? args->message : "";
  const bool handshake_noise = message.find("No match found for server name") != std::string_view::npos ||
                               message.find("Handshake failed") != std::string_view::npos ||
                               message.find("cancel_check_peer") != std::string_view::npos;
  if (handshake_noise || args->severity == GPR_LOG_SEVERITY_DEBUG) {
    spdlog::debug("grpc: {}", message);
  } else if (args->severity == GPR_LOG_SEVERITY_INFO) {
    spdlog::info("grpc: {}", message);
  } else {
    spdlog::warn("grpc: {}", message);
  }
}

}  // namespace

void route_grpc_logs() {
  static std::once_flag once;
  std::call_once(once, [] { gpr_set_log_function(log_from_grpc); });
}

std::shared_ptr<grpc::Channel> open_peer_channel(const std::string& address, const PeerChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, int(options.max_reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // an idle pipeline stream keeps being watched
  if (options.tls) {
    route_grpc_logs();
    args.SetSslTargetNameOverride(options.tls->target_name_for(address));
  }
  return grpc::CreateCustomChannel(
      address, options.tls ? options.tls->channel_credentials() : grpc::InsecureChannelCredentials(), args);
}

void configure_peer_server(grpc::ServerBuilder& builder, int max_message_bytes) {
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  // Without this the server answers the clients' keepalive pings on idle streams with GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kKeepaliveTimeMs / 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Two nodes must never share a port silently: binding a taken port fails.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

std::string describe_status(const grpc::Status& status) {
  if (status.error_message().empty()) return status_code_name(status.error_code());
  return fmt::format("{}: {}", status_code_name(status.error_code()), status.error_message());
}

bool wait_channel_ready(grpc::Channel& channel, std::chrono::milliseconds timeout, const std::function<bool()>& give_up) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return true;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (std::chrono::steady_clock::now() >= deadline || give_up()) return false;
    channel.WaitForStateChange(state, std::chrono::system_clock::now() + std::chrono::milliseconds(50));
  }
}

}  // namespace px::swarm
