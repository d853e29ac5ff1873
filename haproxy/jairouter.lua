-- jairouter.lua: the model-name rewrite for models whose upstream name differs from
-- the name clients use (docs/catalogue.md, "The upstream name").
--
-- The agent parses the request body itself; when the catalogue's upstream name differs
-- it answers with where the model value is and what to put there (model_off, model_len,
-- model_rewrite). jairouter.cfg sends such requests through fe_jairouter_rewrite, which
-- hands this filter:
--   txn.jr.model_off          offset of the value in the body (JSON: the opening quote)
--   txn.jr.model_len          its length as sent (JSON: quotes and escapes included)
--   txn.jr.model_rewrite_hex  the replacement bytes, hex-encoded (a JSON string, or the
--                             raw form value)
-- This filter splices those bytes in and nothing else, so every other byte of the body
-- passes as the client sent it. No second JSON or multipart parser here: the place is
-- the one the routing decision read. jairouter.cfg sets the new Content-Length with an
-- http-request rule: in 2.6 the HTTPMessage header functions fail once the body has
-- been buffered (option http-buffer-request), which is always the case here.
--
-- HAProxy 2.6 can change a request body only from a filter (HTTPMessage:set; the
-- Channel functions may not alter HTTP messages from actions), hence a filter:
--     lua-load-per-thread haproxy/jairouter.lua   (global)
--     filter lua.jairouter-rewrite                (frontend fe_jairouter_rewrite)
-- A request whose value is not where the agent said (it cannot happen with one
-- buffered body, but a filter must not guess) is aborted rather than sent with the
-- wrong model.

local Rewrite = {}
Rewrite.id = "jairouter model rewrite"
Rewrite.flags = filter.FLT_CFG_FL_HTX
Rewrite.__index = Rewrite

function Rewrite:new()
	local f = {}
	setmetatable(f, Rewrite)
	f.seen = 0 -- body bytes that went past this filter
	f.done = true
	return f
end

local function var(txn, name)
	return txn:get_var("txn.jr." .. name)
end

-- Runs once the agent has answered and the http-request rules are done: plans the rewrite.
function Rewrite:http_headers(txn, http_msg)
	if http_msg.channel:is_resp() then
		return filter.CONTINUE
	end
	local hex, off, len = var(txn, "model_rewrite_hex"), var(txn, "model_off"), var(txn, "model_len")
	if hex == nil or off == nil or len == nil then
		return filter.CONTINUE
	end
	if #hex % 2 ~= 0 or hex:find("[^0-9A-Fa-f]") then
		error("jairouter: malformed rewrite plan") -- never forward the client's model name
	end
	self.rewrite = hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
	self.off, self.len = tonumber(off), tonumber(len)
	self.done = false
	filter.register_data_filter(self, http_msg.channel)
	return filter.CONTINUE
end

function Rewrite:http_payload(txn, http_msg)
	if http_msg.channel:is_resp() or self.done then
		return
	end
	local avail = http_msg:input()
	local rel = self.off - self.seen
	if rel + self.len <= avail then
		if http_msg:set(self.rewrite, rel, self.len) < 0 then
			error("jairouter: model rewrite failed") -- never forward the client's model name
		end
		self.done = true
		filter.unregister_data_filter(self, http_msg.channel)
		return
	end
	if rel < avail then
		error("jairouter: model value not in the buffered body") -- refuse rather than guess
	end
	self.seen = self.seen + avail
end

core.register_filter("jairouter-rewrite", Rewrite, function(f, args)
	return f
end)

-- jairouter-refuse: the refusal of a request whose body had not fully arrived when
-- the agent decided (a body larger than one buffer). jairouter.cfg sends such requests
-- here instead of answering at once: answering before the body is read makes the
-- connection close under the client's (or the internal hop's) upload, and the answer
-- can be lost (a 502 or a cancelled HTTP/2 stream instead of the 413). This service
-- reads and discards the rest of the body (at most DRAIN_MAX bytes), then answers with
-- the agent's status and OpenAI error body, or 413/503 when the agent gave none.
--     http-request use-service lua.jairouter-refuse   (frontend fe_jairouter)
local DRAIN_MAX = 64 * 1024 * 1024
local TOO_LARGE = '{"error":{"message":"The request is larger than the gateway can inspect.",' ..
	'"type":"invalid_request_error","param":null,"code":"request_too_large"}}'
local UNAVAILABLE = '{"error":{"message":"The gateway\'s policy agent is unavailable; the request ' ..
	'was not processed. Retry later.","type":"server_error","param":null,"code":"agent_unavailable"}}'

core.register_service("jairouter-refuse", "http", function(applet)
	local drained = 0
	while drained < DRAIN_MAX do
		local chunk = applet:receive(65536)
		if chunk == nil or #chunk == 0 then
			break
		end
		drained = drained + #chunk
	end
	local status = tonumber(applet:get_var("txn.jr.status") or "")
	local body = applet:get_var("txn.jr.error")
	if applet:get_var("txn.jr.err") == 3 or body == nil or status == nil or status < 400 or status > 599 then
		status, body = 413, TOO_LARGE
		if applet:get_var("txn.jr.err") ~= 3 and applet:get_var("txn.jr.verdict") ~= "deny" then
			status, body = 503, UNAVAILABLE
			applet:add_header("retry-after", "1")
		end
	end
	applet:set_status(status)
	applet:add_header("content-type", "application/json")
	applet:add_header("content-length", tostring(#body))
	applet:start_response()
	applet:send(body)
end)
