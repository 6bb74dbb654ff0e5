// The PostgreSQL test cluster, for the cases tagged [postgres]: ctest starts
// it (fixture pg, tests/tools/pg_cluster) and names it in SESSIOND_TEST_PG,
// either a pg_cluster directory or a URI. Without it those cases fail.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "store/postgres/pg_conn.h"

namespace sessiond::test {

inline std::string TestPgUri() {
  const char* v = std::getenv("SESSIOND_TEST_PG");
  if (!v || !*v)
    FAIL("SESSIOND_TEST_PG is not set: run the [postgres] cases through ctest (it starts a "
         "cluster), or set it to a tests/tools/pg_cluster directory or a postgresql:// URI");
  std::string s = v;
  if (s.rfind("postgres", 0) == 0) return s;
  std::ifstream f(s + "/uri");
  std::string uri;
  std::getline(f, uri);
  if (uri.empty()) FAIL("no cluster URI in " + s + "/uri (tests/tools/pg_cluster start " + s + ")");
  return uri;
}

// `uri` with `key=value` added to its query.
inline std::string WithParam(const std::string& uri, const std::string& kv) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + kv;
}

// A schema of its own on the test cluster, dropped at the end, so cases run
// side by side (ctest -j) without seeing each other's sessions. uri() puts it
// first on the search path, where the store creates its tables.
class TempPgSchema {
 public:
  TempPgSchema() {
    std::random_device rd;
    name_ = "t_" + std::to_string(rd()) + "_" + std::to_string(rd());
    pg::Conn c({TestPgUri(), 5000});
    c.Exec(("CREATE SCHEMA " + name_).c_str());
  }
  ~TempPgSchema() {
    try {
      pg::Conn c({TestPgUri(), 5000});
      c.Exec(("DROP SCHEMA " + name_ + " CASCADE").c_str());
    } catch (...) {
    }
  }
  TempPgSchema(const TempPgSchema&) = delete;
  TempPgSchema& operator=(const TempPgSchema&) = delete;

  const std::string& name() const { return name_; }
  std::string uri() const { return WithParam(TestPgUri(), "options=-csearch_path%3D" + name_); }

 private:
  std::string name_;
};

}  // namespace sessiond::test
