-- D: GET, each request with the next of the cookies in the file BENCH_COOKIES.
local cookies = {}
for line in io.lines(os.getenv("BENCH_COOKIES")) do cookies[#cookies + 1] = line end
local n = 0
function setup(thread) thread:set("offset", math.random(#cookies)) end
function request()
  n = n + 1
  return wrk.format("GET", nil, { Cookie = cookies[(offset + n) % #cookies + 1] })
end
dofile(os.getenv("BENCH_LUA") .. "/report.lua")
