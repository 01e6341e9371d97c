#pragma once
// One function per `kiln` subcommand; each returns the process exit code.
namespace kiln::cli {
int cmd_up(int argc, char** argv);
int cmd_core(int argc, char** argv);
int cmd_gateway(int argc, char** argv);
int cmd_audit(int argc, char** argv);
int cmd_events(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_replay(int argc, char** argv);
int cmd_token(int argc, char** argv);
int cmd_worker(int argc, char** argv);
int cmd_simulate(int argc, char** argv);
int cmd_balance(int argc, char** argv);
} // namespace kiln::cli
