// Measures the TypeScript SDK's sender: COUNT ad clicks through one stream.
//
// Usage: node client/typescript/bench/send.mjs URL COUNT WINDOW   (after npm run build)
//
// Builds the events first (untimed), then sends them through one
// client.sender({ window: WINDOW }) as fast as its window lets it, and waits
// for every answer. Prints one JSON line: ok, errors, seconds (first send to
// last answer), cpu_seconds (this process's user + system CPU over that time)
// and the first error. Run by `dev/bench` (the SDK stage), beside the Rust SDK.
import { adClick, connect } from "../dist/index.js";

const [url, countText, windowText] = process.argv.slice(2);
const count = Number(countText);
const events = Array.from({ length: count }, (_, i) =>
  adClick({
    advertiserId: `bench-ts-${i % 100}`,
    ipAddress: `10.${i % 250}.${Math.floor(i / 250) % 250}.1`,
    userAgent: "bench/typescript",
    referringUrl: `https://example.com/landing/${i}`,
  }),
);
const client = connect(url);
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
const started = performance.now();
const cpuStarted = cpu();
const sender = client.sender({ window: Number(windowText) });
const acks = [];
for (const event of events) {
  const { ack } = await sender.send(event);
  acks.push(ack);
}
let ok = 0;
let errors = 0;
let firstError = null;
for (const result of await Promise.allSettled(acks)) {
  if (result.status === "fulfilled") ok += 1;
  else {
    errors += 1;
    firstError ??= String(result.reason);
  }
}
await sender.close().catch((e) => { firstError ??= String(e); });
const seconds = (performance.now() - started) / 1000;
const cpuSeconds = cpu() - cpuStarted;
client.close();
console.log(JSON.stringify({ ok, errors, seconds, cpu_seconds: cpuSeconds, first_error: firstError }));
process.exit(errors === 0 ? 0 : 1);
