// A @grpc/grpc-js client that streams the events it reads and prints every
// answer.
//
// Usage: node send.mjs PROTO_DIR ADDRESS < events.jsonl
//
// Each input line is one ad click: {"event_time_ms", "idempotency_key",
// "ad_click": {ip_address, user_agent, referring_url, advertiser_id}}. All of
// them go through one SubmitEvents call, waiting for 'drain' whenever the
// call's write buffer is full. Prints one JSON line per answer, in order:
// {"ack": {"partition", "offset"}} or {"error": {"code", "field",
// "message"}}, then {"status": "OK"} (or the call's error). Exit 0 when the
// call ended OK.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules", "x.js"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [protoDir, address] = process.argv.slice(2);
if (!address) {
  console.error("usage: node send.mjs PROTO_DIR ADDRESS < events.jsonl");
  process.exit(2);
}
const definition = protoLoader.loadSync("tributary/v1/ingest.proto", {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  defaults: false,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(definition);
const client = new proto.tributary.v1.IngestService(address, grpc.credentials.createInsecure());

const lines = readFileSync(0, "utf8").split("\n").filter((line) => line.trim() !== "");
const call = client.SubmitEvents();
call.on("data", (response) => {
  const result = response.result || {};
  const answer = result.ack
    ? { ack: { partition: result.ack.partition, offset: Number(result.ack.offset) } }
    : { error: result.error || { code: "NONE", field: "", message: "no result" } };
  console.log(JSON.stringify(answer));
});
// The call is over once its status is in and every answer was read.
const statusIn = new Promise((resolve) => {
  call.on("status", (status) => resolve(status));
  call.on("error", () => {});
});
const answersRead = new Promise((resolve) => {
  call.on("end", resolve);
  call.on("error", resolve);
});
const finished = Promise.all([statusIn, answersRead]).then(([status]) => status);

let cancelled = false;
statusIn.then(() => { cancelled = true; });
for (const line of lines) {
  if (cancelled) break;
  const event = JSON.parse(line);
  const ms = event.event_time_ms;
  const request = {
    event: {
      event_time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 },
      idempotency_key: event.idempotency_key,
      ad_click: event.ad_click,
    },
  };
  if (!call.write(request)) {
    await new Promise((resolve) => {
      call.once("drain", resolve);
      statusIn.then(resolve);
    });
  }
}
call.end();
const status = await finished;
const code = Object.keys(grpc.status).find((k) => grpc.status[k] === status.code);
console.log(JSON.stringify({ status: status.code === grpc.status.OK ? "OK" : `${code}: ${status.details}` }));
client.close();
process.exit(status.code === grpc.status.OK ? 0 : 1);
