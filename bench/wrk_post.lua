-- wrk script: POSTs of a JSON body (or, with WRK_METHOD=GET, GETs without one: bench/real_nodes.py),
-- and a JSON summary on stdout at the end. Headers such as Authorization come from wrk's -H.
--
-- The body comes from the environment so the Python side decides it: WRK_BODY, the same for every
-- request (bench/hot_path.py); or, when WRK_BODY_PREFIX is set, WRK_BODY_PREFIX .. n ..
-- WRK_BODY_SUFFIX with n counting from 1 in this wrk thread, so every write is distinct and the
-- nodes' final state shows which one each applied last (bench/mirror_writes.py, run with -t1: one
-- sequence for all connections). The summary is one line starting with "WRK_JSON ": latency
-- percentiles in microseconds, request and error counts, duration in microseconds.

wrk.method = os.getenv("WRK_METHOD") or "POST"
if wrk.method ~= "GET" then
  wrk.body = os.getenv("WRK_BODY") or "{}"
  wrk.headers["Content-Type"] = "application/json"
end

local prefix = os.getenv("WRK_BODY_PREFIX")
if prefix then
  local suffix = os.getenv("WRK_BODY_SUFFIX") or "]"
  local seq = 0
  function request()
    seq = seq + 1
    return wrk.format(nil, nil, nil, prefix .. seq .. suffix)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
