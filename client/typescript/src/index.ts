// Tributary's TypeScript SDK for Node.js: connect, build events, stream them
// with backpressure and resend, and read the aggregates back.
export { type Ack } from "./ack.js";
export { Client, connect, type ConnectOptions, DEFAULT_URL } from "./client.js";
export {
  codeName,
  ConnectionError,
  EventRejected,
  type EventErrorCodeName,
  GaveUp,
  InvalidEvent,
  InvalidOptions,
  SenderClosed,
  StatusError,
  TributaryError,
} from "./errors.js";
export {
  type AdClickInput,
  adClick,
  type EnvelopeOptions,
  type Event,
  type ExtraFieldsOption,
  generic,
  type PriceTickInput,
  priceTick,
} from "./events.js";
export {
  type Aggregate,
  AggregatePages,
  type AggregatesRequest,
  type PriceAccuracy,
  type PriceAccuracyRequest,
} from "./query.js";
export { type Pending, type ReconnectInfo, Sender, type SenderOptions, type SenderStats } from "./sender.js";
export { type DurationInput, type TimeInput } from "./time.js";
