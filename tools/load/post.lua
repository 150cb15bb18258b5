-- wrk: POST the file named by BODY as JSON. With RESULT set, done() writes
-- the run's counts and its whole latency histogram there (one "value count"
-- line per latency in microseconds), so that tools/load/run.sh can add up
-- several runs of one server exactly, percentiles included.
local file = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
    local path = os.getenv("RESULT")
    if not path then
        return
    end
    local out = assert(io.open(path, "w"))
    local e = summary.errors
    out:write(string.format("requests %d\nduration_us %d\nstatus_errors %d\nsocket_errors %d\n",
        summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
    for i = 1, #latency do
        local value, count = latency(i)
        out:write(string.format("%d %d\n", value, count))
    end
    out:close()
end
