#include "store/liveness.h"

namespace sessiond::sql {
namespace {

std::string Col(std::string_view row, std::string_view column) { return std::string(row) + std::string(column); }

}  // namespace

std::string Alive(const LiveTerms& t) {
  std::string now(t.now);
  return Unexpired(t.row, now) + " AND " + Col(t.row, "accessed") + " > " + now + " - " + std::string(t.idle) +
         " AND " + Col(t.row, "created") + " > " + now + " - " + std::string(t.absolute);
}

std::string Unexpired(std::string_view row, std::string_view now) {
  return Col(row, "expires") + " > " + std::string(now);
}

std::string Expired(std::string_view row, std::string_view now) {
  return Col(row, "expires") + " <= " + std::string(now);
}

std::string ExpiryAfterTouch(std::string_view least, const LiveTerms& t) {
  return std::string(least) + "(" + std::string(t.now) + " + " + std::string(t.idle) + ", " +
         Col(t.row, "created") + " + " + std::string(t.absolute) + ")";
}

std::string ExpiryOfNew(std::string_view least, const LiveTerms& t) {
  return std::string(t.now) + " + " + std::string(least) + "(" + std::string(t.idle) + ", " +
         std::string(t.absolute) + ")";
}

std::string SweepExpired(std::string_view now, std::string_view limit, std::string_view lock) {
  return "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE " + Expired("", now) +
         " LIMIT " + std::string(limit) + std::string(lock) + ")";
}

}  // namespace sessiond::sql
