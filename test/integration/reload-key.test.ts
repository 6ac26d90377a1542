// Regression: reload() compared the redacted config, so rotating the key in a middleware URL's
// query (?key=OLD → ?key=NEW) on SIGHUP was no change: the old key stayed in use.
import { expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { httpRequest } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';

const start = useStack();

it('a middleware key rotated by a reload is used by the next middleware call', async () => {
  const { edge, mw, origin } = await start({}, { backendPath: '/auth?key=OLD-KEY' });
  expect((await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=a`)).status).toBe(200);
  expect(mw.requests[0]!.rawQuery).toBe('key=OLD-KEY&token=a');
  const next = buildConfig({ file: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, upstream: { url: origin.url }, backend: { url: `${mw.url}/auth?key=NEW-KEY` } }, fileName: 'test config' });
  const needsRestart = edge.app.reload(next);
  expect(needsRestart).toEqual(['listen.port', 'admin.listen.port'].filter((k) => needsRestart.includes(k)));
  expect((await httpRequest(`${edge.url}/play/ch1/v1/index.m3u8?token=b`)).status).toBe(200);
  expect(mw.requests[1]!.rawQuery).toBe('key=NEW-KEY&token=b');
  // The log says what changed, never the key.
  const line = edge.logs.find((l) => l['msg'] === 'configuration reloaded')!;
  expect(JSON.stringify(line)).not.toContain('NEW-KEY');
  expect(line['changed']).toEqual(expect.arrayContaining(['backends']));
});
