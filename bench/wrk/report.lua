-- Shared by every scenario: one machine-readable line at the end of a run.
-- RESULT <requests> <seconds> <errors> <p50 ms> <p99 ms>
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %.3f %.3f\n", summary.requests,
    summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
