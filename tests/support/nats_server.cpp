#include "support/nats_server.hpp"

#include <csignal>
#include <fstream>
#include <regex>
#include <stdexcept>

namespace kiln::test {

nats_server::nats_server() { start("-1"); }

void nats_server::kill() {
  proc_->signal(SIGKILL);
  proc_->wait();
}

void nats_server::pause() { proc_->signal(SIGSTOP); }
void nats_server::resume() { proc_->signal(SIGCONT); }

void nats_server::start_again() { start(std::to_string(port_)); }

void nats_server::start(const std::string& port) {
  proc_ = std::make_unique<child_process>(process_options{
    {"/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", (dir_ / "js").string(),
     "--ports_file_dir", dir_.path().string()},
    true});
  // The server writes its ports to <name>_<pid>.ports once it listens.
  auto ports = dir_ / ("nats-server_" + std::to_string(proc_->pid()) + ".ports");
  std::string text;
  bool found = wait_until([&] {
    std::ifstream in{ports};
    text.assign(std::istreambuf_iterator<char>{in}, {});
    return text.find("nats://") != std::string::npos;
  });
  std::smatch m;
  if (!found || !std::regex_search(text, m, std::regex{R"(nats://[0-9.]+:(\d+))"}))
    throw std::runtime_error("nats-server did not start: " + proc_->transcript());
  port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
}

nats_server::~nats_server() {
  proc_->signal(SIGTERM);
  proc_->wait();
}

} // namespace kiln::test
