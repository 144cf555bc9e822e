// Where an acknowledged event was stored.
import type { EventAck } from "./gen/tributary/v1/ingest_pb.js";

/** Where an acknowledged event was stored. */
export interface Ack {
  /** The Kafka topic, e.g. `tributary.events.ad_click`. */
  topic: string;
  /** The partition within the topic. */
  partition: number;
  /** The offset within the partition (a bigint: Kafka offsets are 64-bit). */
  offset: bigint;
  /** The Schema Registry id of the Avro schema the event was written with. */
  schemaId: number;
}

/** The SDK's Ack of a protobuf EventAck. */
export function toAck(ack: EventAck | undefined): Ack {
  return {
    topic: ack?.topic ?? "",
    partition: ack?.partition ?? 0,
    offset: ack?.offset ?? 0n,
    schemaId: ack?.schemaId ?? 0,
  };
}
