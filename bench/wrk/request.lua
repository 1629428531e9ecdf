-- wrk script for bench/run.sh: one fixed request, configured from the environment, and a
-- machine-readable summary.
--
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     request body (sent with Content-Type: application/json)
--   BENCH_HEADERS  extra headers, one "Name: value" per line
--   BENCH_OUT      file to append one JSON line to when the run is done
--
-- Latencies are in microseconds. err_status counts responses with a status >= 400 (a 304 is
-- not an error).

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body = os.getenv("BENCH_BODY")
if body ~= nil and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local headers = os.getenv("BENCH_HEADERS") or ""
for line in string.gmatch(headers, "[^\n]+") do
  local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
  if name ~= nil then
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local line = string.format(
    '{"requests":%d,"seconds":%.3f,"bytes":%d,"rps":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}',
    summary.requests, secs, summary.bytes, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout)
  local out = os.getenv("BENCH_OUT")
  if out ~= nil and #out > 0 then
    local f = assert(io.open(out, "a"))
    f:write(line, "\n")
    f:close()
  else
    io.write(line, "\n")
  end
end
