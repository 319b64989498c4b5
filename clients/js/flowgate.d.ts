// Types for flowgate.js.

export const FINISHED: string[];

export class FlowgateError extends Error {
  constructor(status: number, code: string, message: string);
  status: number;
  code: string;
}

export interface ClientOptions {
  /** Server address; '' (the default) means this page's origin. */
  baseUrl?: string;
  /** A run token, tag token or API key, sent as a bearer token. */
  token?: string;
  /** Called on 401 (e.g. `token_expired`); the watch resumes with the new token. */
  refreshToken?: () => Promise<string>;
  onState?: (state: 'connecting' | 'live' | 'reconnecting' | 'closed') => void;
  /** Longest pause between reconnects, ms (default 10000). */
  maxBackoffMs?: number;
}

export interface Run {
  id: string;
  workflow: string;
  status: string;
  tags: string[];
  output?: unknown;
  error?: unknown;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

export interface Watch {
  close(): void;
  /** The last event id seen: pass it as `from` to continue elsewhere. */
  position(): string | null;
}

export interface RunsWatch extends Watch {
  /** The merged list, newest first. */
  runs(): Run[];
}

export interface Client {
  readonly token: string | null;
  watchRun(id: string, h?: {
    onStatus?: (run: Run) => void;
    onEvent?: (e: { key: string; value: unknown; version: number }) => void;
    onRecord?: (r: { key: string; offset: number; value: unknown }) => void;
    onClose?: (c: { key: string; next: number }) => void;
    onEnd?: (run: Run) => void;
    onError?: (e: FlowgateError) => void;
    from?: string;
  }): Watch;
  watchRuns(f?: {
    tag?: string; workflow?: string; status?: string; limit?: number;
    onRuns?: (runs: Run[]) => void;
    onRun?: (run: Run) => void;
    onError?: (e: FlowgateError) => void;
    from?: string;
  }): RunsWatch;
  followStream(id: string, key: string, h?: {
    from?: number;
    onRecord?: (value: unknown, offset: number) => void;
    onEnd?: (end: unknown) => void;
    onError?: (e: FlowgateError) => void;
  }): Watch;
  approve(link: string, comment?: string): Promise<unknown>;
  send(id: string, topic: string, body: unknown, idempotencyKey?: string): Promise<unknown>;
  request(method: string, path: string, body?: unknown): Promise<unknown>;
}

export function createClient(opts?: ClientOptions): Client;
