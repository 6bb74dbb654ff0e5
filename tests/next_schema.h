// The next release's schema, in a test process: one expand step and one
// contract step that needs it, added to an engine's steps (as
// tests/tools/sessiond_next.cc adds them to a build) for as long as the
// object lives, or until Withdraw() plays the older build again.
#pragma once

#include <string>

#include "store/backend.h"

namespace sessiond::testing {

class NextSchema {
 public:
  NextSchema(SchemaSteps& steps, std::string expand, std::string contract = "DROP TABLE next_notes;")
      : steps_(steps), older_(steps.known()) {
    steps_.expand.push_back(std::move(expand));
    steps_.contract.push_back({older_ + 1, std::move(contract)});
  }
  ~NextSchema() { Withdraw(); }
  NextSchema(const NextSchema&) = delete;
  NextSchema& operator=(const NextSchema&) = delete;

  // The schema version of the build before it.
  int older() const { return older_; }
  // From here on the process is the older build again.
  void Withdraw() {
    if (withdrawn_) return;
    steps_.expand.pop_back();
    steps_.contract.pop_back();
    withdrawn_ = true;
  }

 private:
  SchemaSteps& steps_;
  int older_;
  bool withdrawn_ = false;
};

}  // namespace sessiond::testing
