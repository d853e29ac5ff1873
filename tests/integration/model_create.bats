#!/usr/bin/env bats
# Atomic model creation (sql/009, jairouterctl model add --private/--grant/--group):
# while another tenant lists models and calls the new name in a loop, a model created
# private with a grant is never seen by that tenant, and the granted tenant gets it.

setup_file() {
	load helpers
	stack_start
	jr_ctl tenant add owner >/dev/null
	jr_ctl tenant add other >/dev/null
	jr_ctl model add base-model be_mock >/dev/null
	OWNER_KEY=$(jr_ctl key issue owner | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1)
	OTHER_KEY=$(jr_ctl key issue other | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1)
	export OWNER_KEY OTHER_KEY
}

teardown_file() {
	stack_teardown_file
}

setup() {
	load helpers
}

# model_status_is KEY MODEL STATUS: one chat request for MODEL answers STATUS.
model_status_is() {
	BODY=$(chat_body "$2") auth_chat "$1"
	expect_status "$3"
}

# watch_start MODEL STOPFILE OUT: the other tenant, eight requests at a time, lists
# the models and calls MODEL until STOPFILE exists; OUT gets
# "<requests> <listings naming MODEL> <2xx answers for MODEL>".
watch_start() {
	# The operator composition keeps the operator's own per-client limit (2000 requests
	# in 10 s, then HAProxy's 429): there the watcher paces itself below it.
	local pause=0
	[[ ${JR_STACK_LAYOUT:-} == operator ]] && pause=40
	node -e '
		const fs = require("fs");
		const [url, key, model, stop, out, pause] = process.argv.slice(1);
		// https in the operator composition (JR_STACK_LAYOUT=operator); the CA comes
		// from NODE_EXTRA_CA_CERTS.
		const http = require(url.startsWith("https:") ? "https" : "http");
		let n = 0, listed = 0, served = 0, busy = 0;
		const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
		function go(i) {
			if (fs.existsSync(stop)) { if (--busy === 0) { fs.writeFileSync(out, `${n} ${listed} ${served}\n`); agent.destroy(); } return; }
			const list = i % 2 === 0;
			const body = JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] });
			const req = http.request(new URL(list ? "/v1/models" : "/v1/chat/completions", url),
				{ method: list ? "GET" : "POST", agent, headers: { authorization: `Bearer ${key}`,
				  "content-type": "application/json" } }, (r) => {
				let b = ""; r.on("data", (c) => b += c); r.on("end", () => {
					n++;
					if (list && b.includes(`"${model}"`)) listed++;
					if (!list && r.statusCode < 300) served++;
					setTimeout(go, Number(pause), i + 2);
				});
			});
			req.on("error", () => { n++; go(i + 2); });
			req.end(list ? undefined : body);
		}
		for (let k = 0; k < 8; k++) { busy++; go(k); }
	' "$JR_URL" "$OTHER_KEY" "$1" "$2" "$3" "$pause" 3>&- &
	WATCH_PID=$!
}

watch_stop() {
	touch "$1"
	wait "$WATCH_PID"
}

@test "model add --grant: another tenant never lists or reaches the new model, the granted one does" {
	local stop=$BATS_TEST_TMPDIR/stop out=$BATS_TEST_TMPDIR/seen n listed served
	watch_start fresh-model "$stop" "$out"
	sleep 1
	run jr_ctl model add fresh-model be_mock --grant owner
	[ "$status" -eq 0 ]
	[[ $output == *"fresh-model -> be_mock added"*private* ]]
	eventually 10 model_status_is "$OWNER_KEY" fresh-model 200
	sleep 1
	watch_stop "$stop"
	read -r n listed served <"$out"
	echo "other tenant: $n requests, $listed listings with the model, $served answers"
	((n > 100))
	[ "$listed" -eq 0 ]
	[ "$served" -eq 0 ]
	BODY=$(chat_body fresh-model) auth_chat "$OTHER_KEY"
	expect_openai_error 404 invalid_request_error model_not_found
}

@test "model add --group: the model joins the group in the same transaction" {
	jr_ctl group add team >/dev/null
	jr_ctl grant allow owner @team >/dev/null
	run jr_ctl model add group-model be_mock --private --group team
	[ "$status" -eq 0 ]
	eventually 10 model_status_is "$OWNER_KEY" group-model 200
	BODY=$(chat_body group-model) auth_chat "$OTHER_KEY"
	expect_openai_error 404 invalid_request_error model_not_found
	run jr_ctl model add clash-model be_mock --private --public
	[ "$status" -eq 2 ]
	# A failing grant (unknown tenant) leaves no model behind.
	run jr_ctl model add ghost-model be_mock --grant nobody
	[ "$status" -ne 0 ]
	run jr_ctl model show ghost-model
	[ "$status" -eq 3 ]
}

@test "model add without options keeps a public model (the default)" {
	run jr_ctl model add open-model be_mock
	[ "$status" -eq 0 ]
	[[ $output == *public* ]]
	eventually 10 model_status_is "$OTHER_KEY" open-model 200
}
