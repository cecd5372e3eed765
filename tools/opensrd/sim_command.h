// `opensrd sim`: the fabric simulator (sim/fabric/) from the command line. Its own file so that
// main.cc only registers it: AddSimCommand adds the subcommand and its options to the CLI and
// returns the function that runs it after parsing (-1 when `sim` was not the subcommand given).
#pragma once
#include <functional>

namespace CLI {
class App;
}  // namespace CLI

namespace opensrd::cli {

std::function<int()> AddSimCommand(CLI::App& app);

}  // namespace opensrd::cli
