// The usual test stack: an Astra-like origin, a recording middleware and an edge in front of
// both, torn down after each test. `useStack()` registers the teardown (vitest afterEach) and
// returns the function that starts a stack.
import { afterEach } from 'vitest';
import { startEdge, type EdgeFileConfig, type TestEdge } from './edge.js';
import { startTestMiddleware, type TestMiddleware, type TestMiddlewareOptions } from './middleware.js';
import { startTestOrigin, type TestOrigin, type TestOriginOptions } from './origin.js';

export interface Stack {
  readonly origin: TestOrigin;
  readonly mw: TestMiddleware;
  readonly edge: TestEdge;
}

export interface StackOptions {
  readonly origin?: TestOriginOptions;
  readonly middleware?: TestMiddlewareOptions;
  /** Path and query of the middleware URL the edge calls (default `/auth`). */
  readonly backendPath?: string;
}

/**
 * `edgeConfig` is YAML-shaped; its `upstream` and `backend` sections are merged over the
 * stack's own origin and middleware URLs. `defaults.origin` applies to every stack of the file.
 */
export function useStack(defaults: StackOptions = {}): (edgeConfig?: EdgeFileConfig, options?: StackOptions) => Promise<Stack> {
  const started: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    // Edge first, so it never sees its upstream or middleware vanish mid-test.
    for (const s of started.splice(0).reverse()) await s.close();
  });
  return async (edgeConfig = {}, options = {}) => {
    const origin = await startTestOrigin({ ...defaults.origin, ...options.origin });
    started.push(origin);
    const mw = await startTestMiddleware({ ...defaults.middleware, ...options.middleware });
    started.push(mw);
    const { upstream, backend, ...rest } = edgeConfig as { upstream?: object; backend?: object };
    const edge = await startEdge({
      upstream: { url: origin.url, ...upstream },
      backend: { url: `${mw.url}${options.backendPath ?? defaults.backendPath ?? '/auth'}`, ...backend },
      ...rest,
    });
    started.push(edge);
    return { origin, mw, edge };
  };
}
