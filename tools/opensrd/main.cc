// opensrd: one CLI for the whole system. Parses arguments and dispatches to a subcommand.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "tools/opensrd/commands.h"

int main(int argc, char** argv) {
  using namespace opensrd::cli;
  CLI::App app{"opensrd: SRD-style reliable multipath transport over UDP (software I/O card)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "opensrd 0.1.0");

  DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo",
                                      "Local transfer between two endpoints over several "
                                      "paths with injected loss on one; prints a report");
  demo_cmd->add_option("--paths", demo.paths, "number of paths")->check(CLI::Range(1, 64));
  demo_cmd->add_option("--loss", demo.loss, "loss probability injected on path 1")
      ->check(CLI::Range(0.0, 0.9));
  demo_cmd->add_option("--messages", demo.messages, "messages to transfer");
  demo_cmd->add_option("--seed", demo.seed, "seed for payload sizes");

  CLI11_PARSE(app, argc, argv);
  if (demo_cmd->parsed()) return RunDemo(demo);
  return 2;
}
