#pragma once
namespace kiln::gateway {
struct http_request;
struct http_response;
struct http_server_options;
class http_server;
struct gateway_options;
class gateway;
} // namespace kiln::gateway
