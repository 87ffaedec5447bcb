/** Worker-thread side of the encoder pool: builds the same encoder and encodes the chunks it is sent. */
import { parentPort, workerData } from 'node:worker_threads';
import { createRecordEncoder } from './encoder.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './pool.js';
import { packedRowReader, packRecords } from './wire.js';

const { mapping, options, columns } = workerData as WorkerSetup;
const encoder = createRecordEncoder(mapping, options);
const port = parentPort;
if (!port) throw new Error('encoderWorker.js must run as a worker thread (it is started by createEncoderPool).');

// The event loop's busy time since the last reply: encoding, and also reading the request's rows, which happens
// before this handler runs and is a real part of what a chunk costs a worker.
let busyBefore = performance.eventLoopUtilization();

port.on('message', (request: WorkerRequest) => {
  try {
    const rowAt = packedRowReader(columns, request.rows);
    const packed = packRecords(encoder.schema, request.rows.count, (index) => encoder.encode(rowAt(index)), request.spare);
    const busy = performance.eventLoopUtilization();
    const ms = busy.active - busyBefore.active;
    busyBefore = busy;
    port.postMessage({ id: request.id, packed, ms } satisfies WorkerReply, [packed.hashes]);
  } catch (error) {
    port.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) } satisfies WorkerReply);
  }
});
