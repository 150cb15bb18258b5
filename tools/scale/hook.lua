-- wrk: POST the hook in BODY through the balancer, each request with its own
-- JWT (a line of TOKENS; each thread takes every THREADS-th line), since a
-- token used twice is refused as a replay. Statuses other than 200 are
-- written, with the second they arrived, to OUT.<thread>.
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end

function init(args)
    local f = assert(io.open(os.getenv("BODY"), "rb"))
    body = f:read("*a")
    f:close()
    local threads = tonumber(os.getenv("THREADS"))
    tokens = {}
    local i = 0
    for line in io.lines(os.getenv("TOKENS")) do
        if i % threads == id - 1 then
            tokens[#tokens + 1] = line
        end
        i = i + 1
    end
    next_token = 1
    out = assert(io.open(os.getenv("OUT") .. "." .. id, "w"))
    out:setvbuf("line")
end

function request()
    local token = tokens[next_token]
    if token == nil then
        out:write(os.time() .. " out-of-tokens\n")
        wrk.thread:stop()
        token = "none"
    end
    next_token = next_token + 1
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
end

function response(status, headers, body)
    if status ~= 200 then
        out:write(os.time() .. " " .. status .. "\n")
    end
end
