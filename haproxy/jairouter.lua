-- jairouter.lua: the body splices of requests that detour through fe_jairouter_rewrite:
-- the model-name rewrite for models whose upstream name differs from the name clients use
-- (docs/catalogue.md, "The upstream name"), and the usage of direct streams (the request
-- for it, stream_options.include_usage, and its reading from the answer; docs/limits.md,
-- "The end of a request").
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

-- The usage request of a direct stream (spoa/src/pipeline/pipeline.h has the same strings):
-- inserted before the body's closing brace, or in place of a stream_options value.
local METER_INSERT = ',"stream_options":{"include_usage":true}'
local METER_REPLACE = '{"include_usage":true}'
-- An SSE event longer than this is forwarded without waiting for its end: the usage
-- chunk is a few hundred bytes, so such an event is not it.
local EVENT_MAX = 65536

function Rewrite:new()
	local f = {}
	setmetatable(f, Rewrite)
	f.seen = 0 -- request body bytes that went past this filter
	f.splices = nil -- { {off, len, bytes}, ... } in body order
	return f
end

local function var(txn, name)
	return txn:get_var("txn.jr." .. name)
end

-- The splices the plan asks for, in body order: the model value and the usage request.
local function plan(txn)
	local splices = {}
	local hex, off, len = var(txn, "model_rewrite_hex"), var(txn, "model_off"), var(txn, "model_len")
	if hex ~= nil and off ~= nil and len ~= nil then
		if #hex == 0 or #hex % 2 ~= 0 or hex:find("[^0-9A-Fa-f]") then
			error("jairouter: malformed rewrite plan") -- never forward the client's model name
		end
		local bytes = hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
		splices[#splices + 1] = { tonumber(off), tonumber(len), bytes }
	end
	if var(txn, "meter") == "strip" then
		local moff, mlen = tonumber(var(txn, "meter_off")), tonumber(var(txn, "meter_len"))
		if moff == nil or mlen == nil then
			error("jairouter: malformed usage plan")
		end
		splices[#splices + 1] = { moff, mlen, mlen == 0 and METER_INSERT or METER_REPLACE }
	end
	table.sort(splices, function(a, b) return a[1] < b[1] end)
	return splices
end

-- Request: plans the splices once the http-request rules are done. Response: reads the
-- usage of a metered stream (below).
function Rewrite:http_headers(txn, http_msg)
	if http_msg.channel:is_resp() then
		return self:usage_headers(txn, http_msg)
	end
	local splices = plan(txn)
	if #splices == 0 then
		return filter.CONTINUE
	end
	self.splices = splices
	self.next = 1
	filter.register_data_filter(self, http_msg.channel)
	return filter.CONTINUE
end

-- Applies the splices whose place is in this window of the body. Offsets are the body's
-- as sent; shift counts what earlier splices in this window added.
function Rewrite:request_payload(http_msg)
	local avail = http_msg:input()
	local shift = 0
	while self.next <= #self.splices do
		local sp = self.splices[self.next]
		local rel = sp[1] - self.seen
		if rel + sp[2] > avail then
			if rel < avail then
				error("jairouter: body splice across buffers") -- refuse rather than guess
			end
			break
		end
		if http_msg:set(sp[3], rel + shift, sp[2]) < 0 then
			error("jairouter: body rewrite failed") -- never forward the client's model name
		end
		shift = shift + #sp[3] - sp[2]
		self.next = self.next + 1
	end
	self.seen = self.seen + avail
	if self.next > #self.splices then
		filter.unregister_data_filter(self, http_msg.channel)
	end
end

function Rewrite:http_payload(txn, http_msg)
	if http_msg.channel:is_resp() then
		return self:usage_payload(txn, http_msg)
	end
	if self.splices then
		self:request_payload(http_msg)
	end
end

-- ---- usage of a direct stream ----------------------------------------------------------
-- A stream whose usage the gateway reads (txn.jr.meter "keep": the client asked for the
-- usage chunk; "strip": the gateway asked and removes it). The final usage chunk
-- (OpenAI's format: "choices":[] and a "usage" object) gives txn.jr_pt and txn.jr_ct,
-- which this hop's report line carries to the agent (pt=, ct=). Events are forwarded
-- whole: an incomplete one waits for its end, up to EVENT_MAX bytes.

function Rewrite:usage_headers(txn, http_msg)
	local mode = var(txn, "meter")
	if mode ~= "keep" and mode ~= "strip" then
		return filter.CONTINUE
	end
	local st = http_msg:get_stline()
	local ctype = http_msg:get_headers()["content-type"]
	if tonumber(st.code) ~= 200 or ctype == nil or not ctype[0]:lower():find("^text/event%-stream") then
		return filter.CONTINUE
	end
	self.strip = mode == "strip"
	self.skip = false -- inside an event longer than EVENT_MAX
	filter.register_data_filter(self, http_msg.channel)
	return filter.CONTINUE
end

-- One complete event (its text up to and including the blank line): its usage, if it
-- is the usage chunk, and whether it goes to the client.
function Rewrite:usage_event(txn, ev)
	if not ev:find('"usage":{', 1, true) then
		return true
	end
	local pt = ev:match('"prompt_tokens":(%d+)')
	local ct = ev:match('"completion_tokens":(%d+)')
	if pt then
		txn:set_var("txn.jr_pt", tonumber(pt))
		txn:set_var("txn.jr_ct", tonumber(ct or "0"))
	end
	return not (self.strip and ev:find('"choices":[]', 1, true))
end

-- Returns the bytes forwarded now: whole events only (the rest waits for more data).
function Rewrite:usage_payload(txn, http_msg)
	local avail = http_msg:input()
	if avail == 0 then
		return
	end
	local data = http_msg:body(0, avail) or ""
	local pos, out = 1, 0
	while true do
		local _, last = data:find("\n\r?\n", pos)
		if not last then
			break
		end
		local len = last - pos + 1
		if self.skip then
			self.skip = false
			out = out + len
		elseif self:usage_event(txn, data:sub(pos, last)) then
			out = out + len
		else
			http_msg:remove(out, len)
		end
		pos = last + 1
	end
	if http_msg:eom() then
		return -- the end: everything left goes (HAProxy counts the message's end as input)
	end
	local rest = #data - pos + 1
	if rest > EVENT_MAX then
		self.skip = true
		out = out + rest
	end
	return out
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
