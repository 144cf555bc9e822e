// A @grpc/grpc-js client streaming one event per message as fast as it can.
//
// Usage: node flood.mjs PROTO_DIR ADDRESS COUNT RUN_ID
//
// Opens one SubmitEvents call and writes COUNT ad clicks (one per message,
// idempotency keys RUN_ID-0 .. RUN_ID-<COUNT-1>, all stamped now), waiting
// for 'drain' whenever the call's write buffer is full (the fastest a
// well-behaved grpc-js client goes), and reads the per-event answers as they
// come. Prints one JSON line: acked, rejected, the first rejection, and the
// call's final status. Exit 0 when every event was acknowledged and the call
// ended OK.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules", "x.js"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [protoDir, address, countText, runId] = process.argv.slice(2);
if (!runId) {
  console.error("usage: node flood.mjs PROTO_DIR ADDRESS COUNT RUN_ID");
  process.exit(2);
}
const count = Number(countText);
const definition = protoLoader.loadSync("tributary/v1/ingest.proto", {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  defaults: false,
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(definition);
const client = new proto.tributary.v1.IngestService(address, grpc.credentials.createInsecure());

const started = Date.now();
const now = { seconds: Math.floor(started / 1000), nanos: 0 };
let acked = 0;
let rejected = 0;
let firstRejection = null;
const call = client.SubmitEvents();
call.on("data", (response) => {
  if (response.result && response.result.ack) {
    acked += 1;
  } else {
    rejected += 1;
    if (firstRejection === null) firstRejection = JSON.stringify(response.result);
  }
});
const finished = new Promise((resolve) => {
  call.on("status", (status) => resolve(status));
  call.on("error", () => {});
});

function event(i) {
  return {
    event: {
      event_time: now,
      idempotency_key: `${runId}-${i}`,
      ad_click: {
        ip_address: `10.${i % 250}.${Math.floor(i / 250) % 250}.1`,
        user_agent: "grpc-js-flood",
        referring_url: "https://example.com/",
        advertiser_id: `${runId}-adv-${i % 16}`,
      },
    },
  };
}

let cancelled = false;
finished.then(() => { cancelled = true; });
for (let i = 0; i < count && !cancelled; i++) {
  if (!call.write(event(i))) {
    await new Promise((resolve) => {
      call.once("drain", resolve);
      finished.then(resolve);
    });
  }
}
call.end();
const status = await finished;
const code = Object.keys(grpc.status).find((k) => grpc.status[k] === status.code);
const summary = {
  acked,
  rejected,
  first_rejection: firstRejection,
  status: status.code === grpc.status.OK ? "OK" : `${code}: ${status.details}`,
  seconds: (Date.now() - started) / 1000,
};
console.log(JSON.stringify(summary));
client.close();
process.exit(acked === count && summary.status === "OK" ? 0 : 1);
