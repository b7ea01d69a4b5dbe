-- wrk script for the mirrored-writes section: POSTs of one document batch whose first document
-- carries a sequence number, so every write is distinct and the nodes' final state shows which
-- write each applied last. A JSON summary on stdout at the end, as wrk_post.lua.
--
-- The body is WRK_BODY_PREFIX .. n .. WRK_BODY_SUFFIX (bench/mirror_writes.py splits it), n
-- counting from 1 in this wrk thread (run with -t1: one sequence for all connections).

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local prefix = os.getenv("WRK_BODY_PREFIX") or "["
local suffix = os.getenv("WRK_BODY_SUFFIX") or "]"
local seq = 0

function request()
  seq = seq + 1
  return wrk.format(nil, nil, nil, prefix .. seq .. suffix)
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
