// Why the media cache is ours and not undici's (src/cache/media-cache.ts cites these figures).
// Measures, against a loopback origin that sends a 1 MiB segment in 16 chunks over ~400 ms:
//  1. whether undici's MemoryCacheStore stays within maxSize when every URL has one entry;
//  2. how many origin requests undici's deduplicate + cache interceptors make for 100 viewers
//     arriving one every 4 ms during the transfer of one new segment (how live HLS viewers
//     arrive), with and without X-Forwarded-For excluded from the deduplication key.
// Usage: npm run bench:cache-libs   (about 5 s; traffic to 127.0.0.1 only; JSON to bench/results/)
import { writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, cacheStores, interceptors, request, type Dispatcher } from 'undici';

const SEGMENT = Buffer.alloc(1024 * 1024, 1);
const CHUNKS = 16;
const CHUNK_INTERVAL_MS = 25;
const VIEWERS = 100;
const ARRIVAL_SPACING_MS = 4;
const STORE_MAX_BYTES = 50 * 1024 * 1024;
const FILL_SEGMENTS = 80;

let originRequests = 0;
const origin = createServer((_req, res) => {
  originRequests++;
  res.writeHead(200, { 'content-type': 'video/mp2t', 'cache-control': 'max-age=60', 'content-length': SEGMENT.length });
  let i = 0;
  const chunk = SEGMENT.length / CHUNKS;
  const timer = setInterval(() => {
    res.write(SEGMENT.subarray(i * chunk, (i + 1) * chunk));
    if (++i === CHUNKS) {
      clearInterval(timer);
      res.end();
    }
  }, CHUNK_INTERVAL_MS);
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

async function fetchAll(dispatcher: Dispatcher, path: string): Promise<void> {
  const res = await request(`${base}${path}`, { dispatcher });
  await res.body.arrayBuffer();
}

// 1. The store's bound.
const store = new cacheStores.MemoryCacheStore({ maxSize: STORE_MAX_BYTES, maxCount: 100_000, maxEntrySize: 2 * SEGMENT.length });
const cached = new Agent().compose(interceptors.deduplicate(), interceptors.cache({ store }));
for (let i = 0; i < FILL_SEGMENTS; i++) await fetchAll(cached, `/seg-${i}.ts`);
let keptBytes = 0;
let keptEntries = 0;
for (let i = 0; i < FILL_SEGMENTS; i++) {
  const hit = await store.get({ origin: base, path: `/seg-${i}.ts`, method: 'GET', headers: {} });
  if (hit === undefined) continue;
  keptEntries++;
  for (const chunk of hit.body as Buffer[]) keptBytes += chunk.length;
}

// 2. Coalescing of viewers arriving during the transfer.
async function viewers(dispatcher: Dispatcher, path: string): Promise<number> {
  originRequests = 0;
  await Promise.all(
    Array.from({ length: VIEWERS }, (_, i) =>
      new Promise((resolve) => setTimeout(resolve, i * ARRIVAL_SPACING_MS)).then(async () => {
        const res = await request(`${base}${path}`, { dispatcher, headers: { 'x-forwarded-for': `10.0.0.${i}` } });
        await res.body.arrayBuffer();
      }),
    ),
  );
  return originRequests;
}
const plain = await viewers(cached, '/live-1.ts');
const excluding = new Agent().compose(interceptors.deduplicate({ excludeHeaderNames: ['x-forwarded-for'] }), interceptors.cache({ store: new cacheStores.MemoryCacheStore() }));
const withoutXff = await viewers(excluding, '/live-2.ts');

const result = {
  date: new Date().toISOString(),
  node: process.version,
  storeBound: { maxSizeMiB: STORE_MAX_BYTES / 1048576, segmentsInserted: FILL_SEGMENTS, keptEntries, keptMiB: keptBytes / 1048576, held: keptBytes <= STORE_MAX_BYTES },
  coalescing: { viewers: VIEWERS, arrivalSpacingMs: ARRIVAL_SPACING_MS, transferMs: CHUNKS * CHUNK_INTERVAL_MS, originRequests: plain, originRequestsExcludingXff: withoutXff },
};
console.log('| check | figure |\n|---|---|');
console.log(`| MemoryCacheStore maxSize ${result.storeBound.maxSizeMiB} MiB after ${FILL_SEGMENTS} × 1 MiB | kept ${keptEntries} entries, ${result.storeBound.keptMiB.toFixed(0)} MiB (bound ${result.storeBound.held ? 'held' : 'EXCEEDED'}) |`);
console.log(`| deduplicate + cache, ${VIEWERS} viewers over a ${result.coalescing.transferMs} ms transfer | ${plain} origin requests |`);
console.log(`| same, X-Forwarded-For excluded from the key | ${withoutXff} origin requests |`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/cache-libraries.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
origin.close();
await Promise.all([cached.close(), excluding.close()]);
