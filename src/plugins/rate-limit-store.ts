/**
 * The rate-limit counter store: Redis, shared by every replica, while it answers; this process's memory while
 * it does not. A limit of L then holds per replica (at most N × L across N replicas), never "unlimited"; the
 * switch is logged once each way and reported (`onFallback`), and the shared store is used again as soon
 * as Redis is ready. Counts made in memory during the outage are not carried over (the window restarts in
 * Redis): the bound stays N × L for that window.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

type StoreCallback = (err: Error | null, result?: { current: number; ttl: number }) => void;
interface CounterStore {
  incr(key: string, callback: StoreCallback, timeWindow: number, max: number): void;
}
type LocalStoreClass = new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => CounterStore;
type RedisStoreClass = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, nameSpace: string) => CounterStore;

// @fastify/rate-limit's own stores (CommonJS, without type definitions): the counting rules stay the library's.
const require = createRequire(import.meta.url);
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as LocalStoreClass;
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreClass;

/** Distinct keys counted in memory during an outage (least recently used beyond it are forgotten). */
const MEMORY_KEYS = 100_000;

export interface FallbackLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** A store class for the plugin's `store` setting (the plugin constructs it with its parameters). */
export function fallbackStore(options: { redis: Redis; nameSpace: string; log: FallbackLogger; onFallback?: ((active: boolean) => void) | undefined }) {
  let fallingBack = false;
  const enter = (err: unknown) => {
    if (fallingBack) return;
    fallingBack = true;
    options.log.warn({ err }, 'rate-limit store (Redis) unavailable: counting in this replica\'s memory until it returns (a limit now holds per replica)');
    options.onFallback?.(true);
  };
  options.redis.on('ready', () => {
    if (!fallingBack) return;
    fallingBack = false;
    options.log.info({}, 'rate-limit store (Redis) available again: limits are shared by every replica');
    options.onFallback?.(false);
  });

  return class RedisWithMemoryFallback implements CounterStore {
    private readonly shared: CounterStore;
    private readonly local: CounterStore;
    constructor(params: { continueExceeding?: boolean; exponentialBackoff?: boolean }) {
      this.shared = new RedisStore(Boolean(params.continueExceeding), Boolean(params.exponentialBackoff), options.redis, options.nameSpace);
      this.local = new LocalStore(Boolean(params.continueExceeding), Boolean(params.exponentialBackoff), MEMORY_KEYS);
    }
    /** Per-route settings are not used (every limit is created with `createRateLimit`): one store serves all. */
    child(): this {
      return this;
    }
    incr(key: string, callback: StoreCallback, timeWindow: number, max: number): void {
      // Not connected: no round trip to wait for (the client queues nothing while offline).
      if (options.redis.status !== 'ready') {
        enter(new Error(`Redis connection ${options.redis.status}`));
        this.local.incr(key, callback, timeWindow, max);
        return;
      }
      this.shared.incr(
        key,
        (err, result) => {
          if (!err) return callback(null, result);
          enter(err);
          this.local.incr(key, callback, timeWindow, max);
        },
        timeWindow,
        max,
      );
    }
  };
}
