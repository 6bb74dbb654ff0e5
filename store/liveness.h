// What "alive" and "expired" mean, written once in SQL: every engine's
// statements that ask it (load, touch, alive, the sweep, the live count, the
// operator's list and stats, PostgreSQL's change function) are built from
// these, so the engines cannot come to disagree at the boundary.
//
// Each function takes the SQL expressions a statement uses for the session
// row's columns and for the times (an engine's placeholders, its server's
// clock, a function's parameters) and returns SQL that both SQLite and
// PostgreSQL understand; only `least` (the smaller of two values: SQLite's
// min(), PostgreSQL's least()) is the engine's word.
//
// Times are unix seconds. A session row holds created, accessed and expires,
// where expires = min(accessed + idle, created + absolute) as the server
// that last touched it computed it (ExpiryAfterTouch).
#pragma once

#include <string>
#include <string_view>

namespace sessiond::sql {

// How one statement names the columns and times the conditions speak of.
struct LiveTerms {
  std::string_view row;       // prefix of the sessions row's columns: "s." or ""
  std::string_view now;       // the clock: "?2", "$2", a server-clock expression...
  std::string_view idle;      // the idle timeout in seconds
  std::string_view absolute;  // the absolute timeout in seconds
};

// The session is alive at `now` for the request path: its stored expiry has
// not come (expires > now, so a session is dead exactly at its expiry), and
// under the timeouts in force now -- which may be shorter than those it was
// stored under -- neither its idle time nor its age has run out.
std::string Alive(const LiveTerms& t);

// Its stored expiry is later than `now`: what the operator's commands and
// the metrics call live (no timeouts needed: the server recorded them in
// expires). Cheap: a range of the expiry index.
std::string Unexpired(std::string_view row, std::string_view now);
// The negation of Unexpired: what garbage collection deletes.
std::string Expired(std::string_view row, std::string_view now);

// The expiry a touch at `now` stores: min(now + idle, created + absolute).
std::string ExpiryAfterTouch(std::string_view least, const LiveTerms& t);
// The expiry of a session created at `now`: now + min(idle, absolute).
std::string ExpiryOfNew(std::string_view least, const LiveTerms& t);

// Deletes at most `limit` sessions expired at `now`, found through the
// expiry index; `lock` follows the inner SELECT (PostgreSQL's FOR UPDATE
// SKIP LOCKED, so collectors at once take disjoint batches). The servers'
// sweep and the operator's gc alike.
std::string SweepExpired(std::string_view now, std::string_view limit, std::string_view lock = "");

}  // namespace sessiond::sql
