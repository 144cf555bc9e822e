// A stopped stack: every SDK call fails within seconds with a
// ConnectionError naming the address (driven by stack/tests/sdk_typescript.rs).
//
//   node test/e2e-unreachable.mjs URL
//
// Prints one JSON line: per call, the error's name, code, message and the
// seconds it took. Exits 0 when every call failed with a ConnectionError.
import { connect, ConnectionError, priceTick } from "../dist/index.js";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node test/e2e-unreachable.mjs URL");
  process.exit(2);
}
const client = connect(url);
const result = {};

async function timed(name, call) {
  const started = Date.now();
  try {
    await call();
    result[name] = { name: "none", message: "it succeeded" };
  } catch (error) {
    result[name] = {
      name: error?.constructor?.name,
      code: error?.code,
      message: String(error?.message),
      seconds: (Date.now() - started) / 1000,
    };
  }
}

const sender = client.sender();
const pending = await sender.send(priceTick({ pair: "ETH-USD", source: "a", price: 1 }));
await timed("send", () => pending.ack);
await timed("close", () => sender.close());
await timed("aggregates", () =>
  client.aggregates({ eventType: "ad_click", start: Date.now() - 3_600_000, end: Date.now() }).toArray(),
);
await timed("submit", () => client.submit(priceTick({ pair: "ETH-USD", source: "a", price: 1 })));
console.log(JSON.stringify(result));
const ok = Object.values(result).every((r) => r.name === "ConnectionError" && r.message.includes(url));
process.exit(ok && result.send.name === ConnectionError.name ? 0 : 1);
