// Assembly and the command line: run, -t, policy tools, signals, reload, shutdown.
#pragma once

namespace dg::app {

int run(int argc, char** argv);

}  // namespace dg::app
