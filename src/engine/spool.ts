import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * An append-only JSON-lines file of planned deliveries. The engine reads the whole model before it
 * sends anything (a model that fails half-way must never reach Meta), so the plan is spooled to disk
 * instead of memory: memory stays flat whatever the model size. It holds hashed cells only.
 */
export class Spool<T> {
  private buffer = '';
  private count = 0;

  private constructor(
    readonly path: string,
    private handle: FileHandle | undefined,
  ) {}

  static async create<T>(dir: string, name: string): Promise<Spool<T>> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${name}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.jsonl`);
    return new Spool<T>(path, await open(path, 'w', 0o600));
  }

  get size(): number {
    return this.count;
  }

  async write(item: T): Promise<void> {
    this.buffer += JSON.stringify(item) + '\n';
    this.count++;
    if (this.buffer.length >= 1 << 20) await this.flush();
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.handle?.close();
    this.handle = undefined;
  }

  /** The items, in write order. */
  async *items(): AsyncGenerator<T> {
    if (this.count === 0) return;
    const lines = createInterface({ input: createReadStream(this.path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
    for await (const line of lines) if (line !== '') yield JSON.parse(line) as T;
  }

  /** Batches of at most `size` items, in write order. */
  async *batches(size: number): AsyncGenerator<T[]> {
    let batch: T[] = [];
    for await (const item of this.items()) {
      batch.push(item);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async dispose(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    await rm(this.path, { force: true });
  }

  private async flush(): Promise<void> {
    if (this.buffer === '' || !this.handle) return;
    const chunk = this.buffer;
    this.buffer = '';
    await this.handle.write(chunk);
  }
}
