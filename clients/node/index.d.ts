// index.d.ts: TypeScript declarations of throttle-client's public API
// (index.js; docs/clients.md). Seconds are numbers of seconds throughout.
import type { ChannelCredentials, ChannelOptions, status as grpcStatus } from '@grpc/grpc-js';

/** The outcomes shared by the C++, Python and Node clients. */
export type FuelOutcomeName = 'fuel' | 'stopped' | 'timed_out' | 'too_late';

/** One of the four frozen FuelOutcome objects; compare with `===`. */
export interface FuelOutcomeValue {
  readonly outcome: FuelOutcomeName;
  readonly fuel: boolean;
  readonly stopped: boolean;
  readonly timedOut: boolean;
  readonly tooLate: boolean;
  toString(): FuelOutcomeName;
  toJSON(): FuelOutcomeName;
}

export declare const FuelOutcome: {
  /** One grant: do one piece of work. */
  readonly FUEL: FuelOutcomeValue;
  /** The throttle was stopped: killFlag is set. */
  readonly STOPPED: FuelOutcomeValue;
  /** The timeout passed without a grant (killFlag unchanged). */
  readonly TIMED_OUT: FuelOutcomeValue;
  /** Only with failIfLate: the next grant was not expected in time. */
  readonly TOO_LATE: FuelOutcomeValue;
};

/** What awaitFuelCount() resolves: FUEL only with all grants asked for. */
export interface FuelResult {
  readonly outcome: FuelOutcomeValue;
  readonly grants: number;
  /** With TOO_LATE: seconds the server expected the next grant to take. */
  readonly expectedWait?: number;
}

/** Deadline-aware admission for awaitFuel / awaitFuelCount. */
export interface AwaitOptions {
  /** With a finite timeout > 0: resolve TOO_LATE at once when the next
   * grant is not expected within it (waits by AwaitFuel calls). */
  failIfLate?: boolean;
}

/** What checkFuel() resolves. */
export interface FuelCheck {
  readonly granted: boolean;
  readonly stopped: boolean;
  /** Seconds until a grant is expected, when neither granted nor stopped
   * and the throttle runs; null otherwise. */
  readonly retryAfter: number | null;
}

/** A failed call: `code` is the numeric gRPC status code, `codeName` its name. */
export declare class ThrottleError extends Error {
  constructor(code: number, details?: string);
  readonly name: 'ThrottleError';
  readonly code: number;
  /** 'NOT_FOUND', 'INVALID_ARGUMENT', ... */
  readonly codeName: string;
  /** The server's message. */
  readonly details: string;
  static fromGrpc(error: { code?: number; details?: string; message?: string }): ThrottleError;
}

/** Reconnection delays: `initial` seconds doubling up to `max`, jittered. */
export declare class Backoff {
  constructor(initial?: number, max?: number, random?: () => number);
  nextDelay(): number;
  reset(): void;
}

/** The seed's kill_flag. */
export declare class KillFlag {
  isSet(): boolean;
  set(): void;
  clear(): void;
}

/** TLS, mTLS and bearer tokens (nothing set: plaintext). */
export interface Security {
  /** PEM file of the CA that signed the server's certificate. */
  caFile?: string;
  /** PEM client certificate and its key (mTLS): both or neither. */
  certFile?: string;
  keyFile?: string;
  /** A bearer token, or a file whose first line is the token (TLS only). */
  token?: string;
  tokenFile?: string;
  /** The name the server's certificate must hold (TLS only). */
  serverName?: string;
}

/** The environment variable of each Security setting. */
export declare const SECURITY_ENV: Readonly<Record<keyof Security, string>>;

/** `given` completed by the environment variables of SECURITY_ENV. */
export declare function securityFromEnv(
  given?: Security,
  env?: Record<string, string | undefined>,
): Security;

/** The channel options of a Throttle's reconnect backoff, then `extra`. */
export declare function channelOptions(
  initial: number,
  max: number,
  extra?: ChannelOptions,
): ChannelOptions;

export interface ThrottleOptions {
  workerId?: string;
  /** The worker's share of the fuel. Default 1. */
  weight?: number;
  /** The worker's priority class, 0..9 (higher served first). Default 0. */
  priority?: number;
  /** Retry backoff in seconds. Defaults 0.05 and 2. */
  backoffInitial?: number;
  backoffMax?: number;
  deadlineSlack?: number;
  /** Deadline of each unary call in seconds. Default 10. */
  callTimeout?: number;
  waitForReady?: boolean;
  /** Grants asked ahead where fuel is unlimited (an integer >= 0; 0: never). */
  askAhead?: number;
  /** TLS / tokens; unset: the environment (SECURITY_ENV). */
  security?: Security;
  /** grpc-js credentials instead of `security` (not both). */
  credentials?: ChannelCredentials;
  /** grpc-js channel options, applied last. */
  channelOptions?: ChannelOptions;
}

export type Mode = 'smooth' | 'window' | 'bucket' | 'unbounded' | 'monitor-only' | 'monitor_only'
  | 'MODE_SMOOTH' | 'MODE_WINDOW' | 'MODE_BUCKET' | 'MODE_UNBOUNDED' | 'MODE_MONITOR_ONLY';

/**
 * What workers do while the server cannot be reached
 * (ThrottleConfig.degradation): keep waiting, fail at once with
 * UNAVAILABLE, or grant themselves their last share for localShareFor.
 */
export type Degradation = 'wait' | 'fail_fast' | 'local_share'
  | 'DEGRADATION_WAIT' | 'DEGRADATION_FAIL_FAST' | 'DEGRADATION_LOCAL_SHARE';

export interface ThrottleSettings {
  mode?: Mode;
  burst?: number;
  manualEmit?: boolean;
  /** Seconds a waiter may be given a slot that passed. */
  catchUp?: number;
  /**
   * Seconds over which the rate ramps linearly to the full rate after a
   * start (and a start after a stop at least as long); 0 or unset: none.
   */
  warmUp?: number;
  /** The fraction of the rate a warm-up starts from, in (0, 1]; unset: 1/3. */
  warmUpFrom?: number;
  /** Seconds a lower priority class may wait without a grant; unset: none. */
  starvationBound?: number;
  /** The adaptive ceiling ({} for every default); unset: not adaptive. */
  adaptive?: AdaptiveSettings;
  /** The degradation policy; unset: 'wait'. */
  degradation?: Degradation;
  /** Seconds, in (0, 3600]: required with 'local_share', unset otherwise. */
  localShareFor?: number;
}

/**
 * The adaptive ceiling (ThrottleConfig.adaptive): the rate moves between
 * floorN and maxN by the outcomes workers report(). Unset or 0: the
 * server's default (1, 0.05, 1 s, 1, 0.5, 10).
 */
export interface AdaptiveSettings {
  floorN?: number;
  targetRejectionRatio?: number;
  /** Seconds. */
  window?: number;
  increaseN?: number;
  decreaseFactor?: number;
  minOutcomes?: number;
}

/** The settings of update(): only the keys given change (a field mask). */
export interface UpdateSettings {
  maxN?: number;
  per?: number;
  mode?: Mode;
  burst?: number;
  manualEmit?: boolean;
  /** Seconds; null brings the server's default back. */
  catchUp?: number | null;
  /** Seconds; null or 0: no warm-up. */
  warmUp?: number | null;
  /** null: the default, 1/3. */
  warmUpFrom?: number | null;
  /** Seconds; null or 0: no starvation bound. */
  starvationBound?: number | null;
  /** null: not adaptive. */
  adaptive?: AdaptiveSettings | null;
  /** null: 'wait'. */
  degradation?: Degradation | null;
  /** Seconds; null: none (what 'wait' and 'fail_fast' need). */
  localShareFor?: number | null;
}

export interface CreateSettings extends ThrottleSettings {
  /** Replace a throttle of the same name. */
  replace?: boolean;
}

export interface ThrottleInfo {
  name: string;
  maxN: number;
  per: number;
  mode: string;
  burst: number;
  manualEmit: boolean;
  /** Seconds; null from a server that lists none. */
  catchUp: number | null;
  /** Seconds; 0: no warm-up. */
  warmUp: number;
  /** The fraction a ramp starts from (1/3 filled in); 0 without warmUp. */
  warmUpFrom: number;
  /** Seconds; 0: no starvation bound. */
  starvationBound: number;
  /** The adaptive settings (defaults filled in), or null. */
  adaptive: Required<AdaptiveSettings> | null;
  /** The maxN in effect: the adaptive ceiling's rate, or maxN. */
  currentMaxN: number;
  /** The degradation policy ('wait' also when listed unspecified). */
  degradation: 'wait' | 'fail_fast' | 'local_share';
  /** Seconds; 0 without (local share only). */
  localShareFor: number;
  /** 'running', 'stopped', ... */
  state: string;
  waitingStreams: number;
  totalEmissions: number;
}

/** [runtime, total, seconds between emissions, emissions per second] */
export type StopStats = [number, number, number, number];

/** What one worker_id got (WorkerStats in the proto). */
export interface WorkerStats {
  /** '' for workers that sent none, and on the others entry. */
  workerId: string;
  grants: number;
  emissions: number;
  grantsPerSecond: number;
  /** The one entry summing the workers beyond the server's bound. */
  others: boolean;
}

/** latest(window, { includeWorkers: true }). */
export interface LatestWithWorkers {
  secondsBetween: number;
  perSecond: number;
  emissions: number;
  windowSeconds: number;
  /** The maxN in effect now, as ThrottleInfo.currentMaxN (0 from an older server). */
  currentMaxN: number;
  /** By grants (most first), then workerId. */
  workers: WorkerStats[];
}

/** mean({ includeWorkers: true }). */
export interface MeanWithWorkers {
  secondsBetween: number;
  perSecond: number;
  runtimeSeconds: number;
  totalEmissions: number;
  /** Jain's index of grants per weight over the tracked workers; 0: no grant. */
  fairnessIndex: number;
  /** By grants (most first), then workerId. */
  workers: WorkerStats[];
}

/** Options of Throttle.watch(). */
export interface WatchOptions {
  /** Seconds between snapshots, in [0.1, 60]; unset: the server's 1 s. */
  interval?: number;
  /** Seconds of each snapshot's `latest` window, in (0, 60]; unset: the interval. */
  window?: number;
  /** Open a lost stream again after the backoff (default true). */
  reconnect?: boolean;
}

/** One snapshot of a watched throttle (a WatchThrottleResponse). */
export interface Snapshot {
  /** When the server took it, by the server's clock. */
  time: Date;
  info: ThrottleInfo;
  /** [seconds between emissions, emissions per second] over the watch's window. */
  latest: [number, number];
  /** [mean seconds between emissions, mean per second] since the first start. */
  mean: [number, number];
  /** True when sent because the state or configuration changed. */
  changed: boolean;
  /** The whole WatchThrottleResponse, field names as in the proto. */
  message: Record<string, unknown>;
}

/** A live watch: an async iterator of snapshots until cancel(). */
export declare class Watch implements AsyncIterableIterator<Snapshot> {
  [Symbol.asyncIterator](): Watch;
  /** The next snapshot; done after cancel(); rejects with the ThrottleError that ended it. */
  next(): Promise<IteratorResult<Snapshot, undefined>>;
  /** What `break` out of for-await calls: cancel(). */
  return(): Promise<IteratorResult<Snapshot, undefined>>;
  /** Ends the watch and frees its stream; pending next() calls resolve done. */
  cancel(): void;
}

/** A handle of one named throttle on a server. */
export declare class Throttle {
  constructor(address: string, name: string, options?: ThrottleOptions);
  readonly address: string;
  readonly name: string;
  readonly killFlag: KillFlag;
  /** Spare grants kept for the next awaitFuel or hasFuel. */
  surplus: number;
  toJSON(): { address: string; name: string; options: ThrottleOptions };
  static fromJSON(json: { address: string; name: string; options?: ThrottleOptions }): Throttle;
  /** Closes for good: every call in flight and later rejects with CANCELLED. */
  close(): void;

  // Worker side.
  /** One grant; no timeout waits for ever, 0 takes only what is there. */
  awaitFuel(timeout?: number, options?: AwaitOptions): Promise<FuelOutcomeValue>;
  /** `n` grants (an integer in [1, 1e9]) at once. */
  awaitFuelCount(n: number, timeout?: number, options?: AwaitOptions): Promise<FuelResult>;
  /** One grant if available now, without waiting. */
  hasFuel(): Promise<boolean>;
  /** hasFuel with the server's retry-after. */
  checkFuel(): Promise<FuelCheck>;
  /** Reports `n` emissions (manual emit); resolves the total. */
  emit(n?: number): Promise<number>;
  /** Reports downstream outcomes (adaptive ceiling); resolves the maxN in effect. */
  report(outcomes?: { successes?: number; rejections?: number }): Promise<number>;

  // Controller side.
  create(maxN: number, per: number, settings?: CreateSettings): Promise<ThrottleInfo>;
  /** Replaces the configuration whole. */
  configure(maxN: number, per: number, settings?: ThrottleSettings): Promise<ThrottleInfo>;
  /** Changes only the settings given (ConfigureThrottle with an update_mask). */
  update(settings: UpdateSettings): Promise<ThrottleInfo>;
  delete(): Promise<void>;
  listThrottles(): Promise<ThrottleInfo[]>;
  /** Rejects with NOT_FOUND when there is no such throttle. */
  info(): Promise<ThrottleInfo>;
  start(): Promise<void>;
  stop(): Promise<StopStats>;
  /** [seconds between emissions, emissions per second] over `window` seconds. */
  latest(window?: number, options?: { includeWorkers?: false }): Promise<[number, number]>;
  /** The window's statistics with what each worker got in it. */
  latest(window: number, options: { includeWorkers: true }): Promise<LatestWithWorkers>;
  /** [mean seconds between emissions, mean per second] since the first start. */
  mean(options?: { includeWorkers?: false }): Promise<[number, number]>;
  /** Since the first start, with the fairness index and what each worker got. */
  mean(options: { includeWorkers: true }): Promise<MeanWithWorkers>;
  /** The whole MeanResponse, field names as in the proto. */
  meanDetails(): Promise<Record<string, unknown>>;
  /** A live view: snapshots at once, every interval and on each change. */
  watch(options?: WatchOptions): Watch;
}

/** grpc-js's status codes (status.NOT_FOUND === 5, ...). */
export declare const status: typeof grpcStatus;
/** The loaded throttle.v1 package of @grpc/proto-loader. */
export declare const proto: any;
