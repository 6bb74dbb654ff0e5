-- Makes sessions: POSTs a login without a cookie and appends each session
-- cookie it is given ("name=value") to the file BENCH_COOKIES.
local out = io.open(os.getenv("BENCH_COOKIES"), "a")
wrk.method = "POST"
wrk.body = "UserName=spread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function response(status, headers, body)
  local c = headers["Set-Cookie"] or headers["set-cookie"]
  if c then
    out:write(c:match("^[^;]+"), "\n")
    out:flush()
  end
end
