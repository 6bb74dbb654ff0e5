// sessiond's log: one line per event, on stderr or in a file that SIGHUP
// reopens. A leaf: it depends on nothing of sessiond, so the store, the
// request path and the server can all write to it.
//
// Thread-safety: every function is safe to call from any thread (not from a
// signal handler).
#pragma once

#include <string>
#include <string_view>

namespace sessiond {

// Writes "sessiond: <message>\n" whole, after the time in UTC when the log is
// a file of LogToFile's ("2026-12-07T20:35:54.123Z sessiond: ..."; on stderr
// the journal, or whatever reads it, stamps lines itself), lines of
// concurrent threads never interleaved, and returns once it is written,
// except while stderr is not being read: a write that has not returned for
// 100 ms holds up no caller (the line waits, up to 1 MiB of lines; past
// that, lines are dropped and a line says how many). A write that fails (a full disk) loses its lines,
// never part of one (what a short write left of a line in a file is taken
// back); a line says how many were lost once the log can be written again.
// Passwords in `message` are masked (Redact, log/redact.h). Control bytes,
// bytes that are not UTF-8 and backslashes in `message` are escaped (\n,
// \r, \t, \\, \xNN), and so are the Unicode controls that change how a
// line is shown (C1 controls, line separators, bidirectional overrides:
// \u{202e}), so nothing a client sends (a %0A in a URL, a page's stderr)
// can forge, split or disguise a line.
void LogLine(std::string_view message);

// `text` escaped as LogLine does.
std::string EscapeForLog(std::string_view text);

// Sends the log to `path` (appended to, created 0640) instead of stderr, its
// lines stamped with the time: the file takes fd 2, so anything else written
// to stderr lands there too (unstamped).
// Throws std::runtime_error with the reason when it cannot be opened.
void LogToFile(const std::string& path);

// Opens the log file again under its name (after logrotate moved it); the
// new file takes fd 2 atomically. Returns false, with
// the old file still in use, when it cannot be opened; true when there is no
// log file (stderr as inherited) or it was reopened.
bool ReopenLog();

}  // namespace sessiond
