-- A and C: GET with the cookie in BENCH_COOKIE (none when empty).
local cookie = os.getenv("BENCH_COOKIE") or ""
if cookie ~= "" then wrk.headers["Cookie"] = cookie end
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
