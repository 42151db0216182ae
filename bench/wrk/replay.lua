-- Replays the requests of a file the bench wrote (one a line: METHOD, path, body, split
-- by tabs), each thread from its own place in it, and prints wrk's figures as JSON.
-- Environment: BENCH_REQUESTS (the file), BENCH_TOKEN (a staff token), BENCH_THREADS.

local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  ["Content-Type"] = "application/json",
}
local threads = 0
local requests = {}
local next_request = 1

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
    if body == "" then
      body = nil
    end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
  -- threads start far apart, so no two send the same booking at the same moment
  next_request = 1 + math.floor(#requests * (thread_number - 1) / tonumber(os.getenv("BENCH_THREADS")))
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, ' ..
    '"p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
