/** Worker-thread side of the encoder pool: builds the same encoder and encodes the chunks it is sent. */
import { parentPort, workerData } from 'node:worker_threads';
import { createRecordEncoder, type IdentityOptions, type Mapping } from './encoder.js';
import type { WorkerReply, WorkerRequest } from './pool.js';
import { packRecords } from './wire.js';

const { mapping, options } = workerData as { mapping: Mapping; options: IdentityOptions };
const encoder = createRecordEncoder(mapping, options);
const port = parentPort;
if (!port) throw new Error('encoderWorker.js must run as a worker thread (it is started by createEncoderPool).');

port.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { id: request.id, packed: packRecords(encoder.schema, request.rows.map((row) => encoder.encode(row))) };
  } catch (error) {
    reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(reply);
});
