#define CATCH_CONFIG_RUNNER
#include <signal.h>

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  // As sessiond's main does: a page that exits without reading its body must
  // not kill the process writing to it (RunPage's documented precondition).
  signal(SIGPIPE, SIG_IGN);
  return Catch::Session().run(argc, argv);
}
