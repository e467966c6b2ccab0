// The `kiln` CLI's subcommands. Each registers its options on a CLI11 app and returns the function to run.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace kiln::cli {

using Command = std::function<int()>;

Command add_inspect(CLI::App& app);
Command add_surgeon(CLI::App& app);
Command add_exec(CLI::App& app);

}  // namespace kiln::cli
