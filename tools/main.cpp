// kiln — command-line entry point. Errors reach the user as one line on stderr and a non-zero exit.
#include <iostream>
#include <map>

#include "commands.h"
#include "kiln/error.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: ONNX inference optimizer and runtime"};
  app.require_subcommand(1);
  std::map<CLI::App*, kiln::cli::Command> commands;
  auto add = [&](CLI::App* sub, kiln::cli::Command run) { commands[sub] = std::move(run); };
  {
    CLI::App* sub = app.add_subcommand("inspect", "Summarize an ONNX model: I/O, ops, params, MACs, shapes");
    add(sub, kiln::cli::add_inspect(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("surgeon", "Rewrite an ONNX model and save it as ONNX");
    add(sub, kiln::cli::add_surgeon(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("exec", "Build or load an engine, run and time it (trtexec-style flags)");
    add(sub, kiln::cli::add_exec(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
