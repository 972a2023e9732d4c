-- wrk script for bench/load.sh: `wrk ... -s bench/wrk.lua URL -- put|get [token]`.
-- put: POST /v3/kv/put with 256-byte values over 1000 keys;
-- get: POST /v3/kv/range of one of those keys.
-- token: an auth token (/v3/auth/authenticate) sent as the Authorization header.
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  return ((data:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

local bodies = {}
local path = "/v3/kv/put"
local counter = 0

function init(args)
  local mode = args[1] or "put"
  local value = base64(string.rep("x", 256))
  for i = 0, 999 do
    local key = base64("bench/key" .. i)
    if mode == "get" then
      bodies[i] = '{"key":"' .. key .. '"}'
    else
      bodies[i] = '{"key":"' .. key .. '","value":"' .. value .. '"}'
    end
  end
  if mode == "get" then path = "/v3/kv/range" end
  if args[2] ~= nil and args[2] ~= "" then wrk.headers["Authorization"] = args[2] end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, path, nil, bodies[counter % 1000])
end
