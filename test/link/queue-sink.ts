import { Rec, type Record } from '../../src/link/record.ts';
import type { RecordSink } from '../../src/link/session.ts';

/** A RecordSink that queues the records it is given (copies of the data, as a real transport would carry): the pure session tests join two LinkSessions with two of these. */
export class QueueSink implements RecordSink {
  blocked = false;
  readonly records: Record[] = [];
  data(offset: number, pieces: Buffer[]): void {
    this.records.push({ type: Rec.DATA, offset, data: [Buffer.concat(pieces)] });
  }
  control(type: typeof Rec.ACK | typeof Rec.FIN | typeof Rec.PING | typeof Rec.PONG, value: number): void {
    if (type === Rec.PING || type === Rec.PONG) this.records.push({ type, stamp: value });
    else if (type === Rec.ACK) this.records.push({ type, recv: value });
    else this.records.push({ type, offset: value });
  }
  types(): number[] {
    return this.records.map((r) => r.type);
  }
}
