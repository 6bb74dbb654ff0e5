-- B: POST a new UserName on every request, always with the same cookie.
local cookie = os.getenv("BENCH_COOKIE") or ""
local n = 0
function request()
  n = n + 1
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if cookie ~= "" then headers["Cookie"] = cookie end
  return wrk.format("POST", nil, headers, "UserName=user" .. n)
end
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
