#include "middleware/base/http.h"

#include <catch2/catch.hpp>

using namespace sessiond;

TEST_CASE("a request is named in the log by its path under nginx and Apache", "[http]") {
  using Env = std::vector<std::string_view>;
  // nginx: DOCUMENT_URI, the whole path.
  CHECK(Describe(Env{"REQUEST_METHOD=GET", "DOCUMENT_URI=/page/extra", "SCRIPT_NAME=/page/extra",
                     "REQUEST_URI=/page/extra?q=1"}) == "GET /page/extra");
  // Apache: no DOCUMENT_URI, SCRIPT_NAME without the PATH_INFO; the path of
  // REQUEST_URI, without its query.
  CHECK(Describe(Env{"REQUEST_METHOD=POST", "SCRIPT_NAME=/page", "PATH_INFO=/extra",
                     "REQUEST_URI=/page/extra?q=1"}) == "POST /page/extra");
  CHECK(Describe(Env{"REQUEST_METHOD=GET", "SCRIPT_NAME=/page"}) == "GET /page");
  CHECK(Describe(Env{}) == "? ?");
}
