/**
 * Where a new viewer of a shared MPEG-TS channel starts (ISO/IEC 13818-1).
 * Pure: fed the upstream bytes, it keeps
 * - packet alignment across chunks (a joiner always starts on a 188-byte
 *   packet boundary, never mid-packet);
 * - the latest PAT and the PMTs it names (a decoder needs them first);
 * - the bytes since the latest video random access point: a packet of a video
 *   PID (stream types from the PMT) whose adaptation field has
 *   random_access_indicator set, which encoders (ffmpeg's muxer, Astra passing
 *   them through) set on keyframes. A joiner gets PAT + PMT + that GOP, then
 *   live bytes: the picture starts at once instead of after the next keyframe.
 *
 * Cost: one look at 4-6 header bytes per 188-byte packet per channel (not per
 * viewer); the GOP is kept as views on the upstream chunks (no copy), bounded
 * by `maxGopBytes` (past it the GOP is dropped and joiners start live).
 *
 * Without a video PID in the PMT (radio), any random access point counts.
 * Sections spanning more than one packet (huge PMTs) are not parsed: joiners
 * then start live on a packet boundary, which players handle (they wait for
 * the next PAT/PMT and keyframe).
 */

export const TS_PACKET_BYTES = 188;
const SYNC = 0x47;
const PAT_PID = 0;

/** H.262, MPEG-4 part 2, H.264, HEVC, and their common private variants. */
const VIDEO_STREAM_TYPES: ReadonlySet<number> = new Set([0x01, 0x02, 0x10, 0x1b, 0x24, 0x42, 0xd1, 0xea]);

export class JoinPointTracker {
  /** Bytes of a packet cut at the end of the previous chunk. */
  private carry = 0;
  /** Lost sync (not a TS stream, or garbage): stop interpreting, join on chunk boundaries. */
  private lostSync = false;
  private pat: Buffer | undefined;
  private readonly pmtPids = new Set<number>();
  private readonly pmts = new Map<number, Buffer>();
  private readonly videoPids = new Set<number>();
  private gop: Buffer[] = [];
  private gopBytes = 0;
  private gopStarted = false;

  constructor(private readonly maxGopBytes: number) {}

  /**
   * Offset in `chunk` of its first whole packet, given what came before
   * (call before `feed(chunk)`).
   */
  alignmentOf(chunk: Buffer): number {
    return this.carry === 0 ? 0 : Math.min(chunk.length, TS_PACKET_BYTES - this.carry);
  }

  /** Takes the next upstream chunk into account. */
  feed(chunk: Buffer): void {
    if (this.lostSync) return;
    const gopBefore = this.gopStarted;
    if (this.carry > 0 && this.carry + chunk.length <= TS_PACKET_BYTES) {
      // Still inside the packet the previous chunk cut.
      this.carry = (this.carry + chunk.length) % TS_PACKET_BYTES;
      this.extendGop(chunk, gopBefore);
      return;
    }
    let offset = this.alignmentOf(chunk);
    let rapAt = -1;
    for (; offset + TS_PACKET_BYTES <= chunk.length; offset += TS_PACKET_BYTES) {
      if (chunk[offset] !== SYNC) {
        this.lostSync = true;
        this.resetGop();
        return;
      }
      if (this.inspect(chunk, offset)) rapAt = offset;
    }
    // A packet cut by the chunk's end: its header may be in this chunk; it is inspected whole never (rare
    // for a random access point to fall there; the next one will do).
    this.carry = offset < chunk.length ? chunk.length - offset : 0;
    if (this.carry > 0 && chunk[offset] !== SYNC) {
      this.lostSync = true;
      this.resetGop();
      return;
    }
    if (rapAt >= 0) {
      this.gop = [chunk.subarray(rapAt)];
      this.gopBytes = chunk.length - rapAt;
      this.gopStarted = true;
      if (this.gopBytes > this.maxGopBytes) this.resetGop();
    } else {
      this.extendGop(chunk, gopBefore);
    }
  }

  private extendGop(chunk: Buffer, started: boolean): void {
    if (!started) return;
    this.gop.push(chunk);
    this.gopBytes += chunk.length;
    if (this.gopBytes > this.maxGopBytes) this.resetGop();
  }

  /**
   * What a viewer joining now gets before the live bytes: PAT, PMTs and the
   * current GOP, or nothing when there is no usable join point yet.
   */
  joinPrefix(): Buffer[] {
    if (!this.gopStarted || this.pat === undefined || this.pmts.size === 0) return [];
    return [this.pat, ...this.pmts.values(), ...this.gop];
  }

  /** True when the packet at `offset` is a random access point of the stream we key on. */
  private inspect(chunk: Buffer, offset: number): boolean {
    const b1 = chunk[offset + 1]!;
    const pid = ((b1 & 0x1f) << 8) | chunk[offset + 2]!;
    const payloadStart = (b1 & 0x40) !== 0;
    const afc = (chunk[offset + 3]! >> 4) & 0x3;
    if (pid === PAT_PID && payloadStart) {
      this.readPat(chunk, offset, afc);
      return false;
    }
    if (payloadStart && this.pmtPids.has(pid)) {
      this.readPmt(chunk, offset, afc, pid);
      return false;
    }
    if ((afc & 0x2) === 0) return false; // no adaptation field
    const afLength = chunk[offset + 4]!;
    if (afLength === 0) return false;
    const rai = (chunk[offset + 5]! & 0x40) !== 0;
    if (!rai) return false;
    return this.videoPids.size === 0 ? this.pmts.size > 0 : this.videoPids.has(pid);
  }

  /** Start of the section in this packet (after the adaptation field and pointer_field), or -1. */
  private sectionStart(chunk: Buffer, offset: number, afc: number): number {
    if ((afc & 0x1) === 0) return -1; // no payload
    let p = offset + 4;
    if ((afc & 0x2) !== 0) p += 1 + chunk[p]!;
    if (p >= offset + TS_PACKET_BYTES) return -1;
    p += 1 + chunk[p]!; // pointer_field
    return p < offset + TS_PACKET_BYTES ? p : -1;
  }

  private readPat(chunk: Buffer, offset: number, afc: number): void {
    const s = this.sectionStart(chunk, offset, afc);
    if (s < 0 || chunk[s] !== 0x00) return;
    const sectionLength = ((chunk[s + 1]! & 0x0f) << 8) | chunk[s + 2]!;
    const end = s + 3 + sectionLength - 4; // without CRC
    if (end > offset + TS_PACKET_BYTES) return;
    this.pat = Buffer.from(chunk.subarray(offset, offset + TS_PACKET_BYTES));
    const pids = new Set<number>();
    for (let p = s + 8; p + 4 <= end; p += 4) {
      const program = (chunk[p]! << 8) | chunk[p + 1]!;
      if (program === 0) continue; // network PID
      pids.add(((chunk[p + 2]! & 0x1f) << 8) | chunk[p + 3]!);
    }
    if (pids.size === this.pmtPids.size && [...pids].every((p) => this.pmtPids.has(p))) return;
    this.pmtPids.clear();
    for (const p of pids) this.pmtPids.add(p);
    this.pmts.clear();
    this.videoPids.clear();
    this.resetGop();
  }

  private readPmt(chunk: Buffer, offset: number, afc: number, pid: number): void {
    const s = this.sectionStart(chunk, offset, afc);
    if (s < 0 || chunk[s] !== 0x02) return;
    const sectionLength = ((chunk[s + 1]! & 0x0f) << 8) | chunk[s + 2]!;
    const end = s + 3 + sectionLength - 4;
    if (end > offset + TS_PACKET_BYTES) return;
    this.pmts.set(pid, Buffer.from(chunk.subarray(offset, offset + TS_PACKET_BYTES)));
    const programInfoLength = ((chunk[s + 10]! & 0x0f) << 8) | chunk[s + 11]!;
    for (let p = s + 12 + programInfoLength; p + 5 <= end; ) {
      const streamType = chunk[p]!;
      const esPid = ((chunk[p + 1]! & 0x1f) << 8) | chunk[p + 2]!;
      const esInfoLength = ((chunk[p + 3]! & 0x0f) << 8) | chunk[p + 4]!;
      if (VIDEO_STREAM_TYPES.has(streamType)) this.videoPids.add(esPid);
      p += 5 + esInfoLength;
    }
  }

  private resetGop(): void {
    this.gop = [];
    this.gopBytes = 0;
    this.gopStarted = false;
  }
}
