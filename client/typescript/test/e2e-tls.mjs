// The SDK over TLS with a private CA and an API key (driven by
// stack/tests/sdk_typescript.rs):
//
//   node test/e2e-tls.mjs https://localhost:PORT CA_PEM_FILE API_KEY
//
// With the CA and the key: ten price ticks through a sender are acknowledged
// and a query answers. Without the key: the sender fails at once with
// UNAUTHENTICATED (no retry can fix it), and so does a query. Without the
// CA: a ConnectionError naming the address. Prints one JSON line.
import { readFileSync } from "node:fs";

import { connect, priceTick, StatusError } from "../dist/index.js";

const [url, caFile, apiKey] = process.argv.slice(2);
if (!apiKey) {
  console.error("usage: node test/e2e-tls.mjs URL CA_PEM_FILE API_KEY");
  process.exit(2);
}
const ca = readFileSync(caFile, "utf8");
const result = {};
const describe = (error) => ({ name: error?.constructor?.name, code: error?.code, message: String(error?.message) });

const client = connect(url, { ca, apiKey });
const sender = client.sender({ window: 4 });
const answers = [];
for (let i = 0; i < 10; i++) {
  answers.push((await sender.send(priceTick({ pair: "TLS-USD", source: "ts", price: 1 + i }))).ack);
}
await sender.close();
const acks = await Promise.all(answers);
result.acked = acks.length;
result.topic = acks[0].topic;
result.aggregates = (
  await client.aggregates({ eventType: "price_tick", start: Date.now() - 3_600_000, end: Date.now() + 60_000 }).toArray()
).length;

const keyless = connect(url, { ca });
const refused = keyless.sender();
const pending = await refused.send(priceTick({ pair: "TLS-USD", source: "ts", price: 1 }));
const started = Date.now();
result.without_key = await pending.ack.then(() => ({ name: "none" }), describe);
result.without_key.seconds = (Date.now() - started) / 1000;
result.without_key_close = await refused.close().then(() => ({ name: "none" }), describe);
result.without_key_query = await keyless
  .aggregates({ eventType: "price_tick", start: Date.now() - 3_600_000, end: Date.now() })
  .toArray()
  .then(() => ({ name: "none" }), describe);

const untrusted = connect(url, { apiKey });
result.without_ca = await untrusted
  .submit(priceTick({ pair: "TLS-USD", source: "ts", price: 1 }))
  .then(() => ({ name: "none" }), describe);

console.log(JSON.stringify(result));
for (const c of [client, keyless, untrusted]) c.close();
const ok =
  result.acked === 10 &&
  result.without_key.code === "UNAUTHENTICATED" &&
  result.without_key.seconds < 3 &&
  result.without_key_close.name === StatusError.name &&
  result.without_key_query.code === "UNAUTHENTICATED" &&
  result.without_ca.name === "ConnectionError" &&
  result.without_ca.message.includes(url);
process.exit(ok ? 0 : 1);
