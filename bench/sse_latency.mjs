#!/usr/bin/env node
// Change → served latency through the real OFREP web provider (Node 20).
//
// Runs @openfeature/web-sdk + @openfeature/ofrep-web-provider against hata with polling
// disabled (change detection by the OFREP event stream only), flips a boolean flag through the
// admin API N times, and measures for each change:
//
//   write    PATCH sent → PATCH answered (hata's write path)
//   event    PATCH sent → the SSE `message` event arrives at the provider's EventSource
//   visible  PATCH sent → PROVIDER_CONFIGURATION_CHANGED fired and the client evaluates the
//            new value (includes the provider's 50 ms debounce and its bulk re-fetch)
//
// and prints p50 / p90 / p99 / max per stage, plus what the provider's re-fetches looked like
// (status, whether they carried flagConfigEtag / flagConfigLastModified, If-None-Match).
//
//   bench/with-hata.sh -- node bench/sse_latency.mjs [--changes 100] [--gap-ms 300]
//   node bench/sse_latency.mjs --url http://127.0.0.1:7070 --admin-token T [--client-token C]
//
// Options (env in brackets): --url [HATA_URL], --admin-token [HATA_ADMIN_TOKEN],
// --client-token (default: HATA_SEED's client_token, else one is created), --project bench,
// --flag static-00000, --changes 100, --gap-ms 300, --timeout-ms 5000, --json (one JSON line).
// npm packages come from HATA_BENCH_NODE (default ~/.cache/hata-bench/node) and are installed
// there if missing.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

// ------------------------------------------------------------------------------------------
// Options.
const argv = process.argv.slice(2);
function opt(name, fallback) {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < argv.length) return argv[i + 1];
  return fallback;
}
const flagOpt = (name) => argv.includes(`--${name}`);
const seed = process.env.HATA_SEED && existsSync(process.env.HATA_SEED)
  ? JSON.parse(readFileSync(process.env.HATA_SEED, 'utf8'))
  : {};
const URL_BASE = (opt('url', process.env.HATA_URL) || 'http://127.0.0.1:7070').replace(/\/$/, '');
const ADMIN = opt('admin-token', process.env.HATA_ADMIN_TOKEN);
const PROJECT = opt('project', seed.project || 'bench');
const ENV = opt('environment', seed.environment || 'development');
const FLAG = opt('flag', (seed.sample && seed.sample.static) || 'static-00000');
const CHANGES = Number(opt('changes', 100));
const GAP_MS = Number(opt('gap-ms', 300));
const TIMEOUT_MS = Number(opt('timeout-ms', 5000));
const JSON_OUT = flagOpt('json');
if (!ADMIN) {
  console.error('sse_latency: need --admin-token or HATA_ADMIN_TOKEN');
  process.exit(2);
}
const CONTEXT = seed.context || {
  targetingKey: 'user-1', email: 'a@example.com', plan: 'pro', version: '2.3.0', age: 30,
};

// ------------------------------------------------------------------------------------------
// npm packages, from a prefix outside the repository.
const PREFIX = process.env.HATA_BENCH_NODE || join(homedir(), '.cache', 'hata-bench', 'node');
if (!existsSync(join(PREFIX, 'node_modules', '@openfeature', 'ofrep-web-provider'))) {
  mkdirSync(PREFIX, { recursive: true });
  console.error(`sse_latency: installing the web provider into ${PREFIX}`);
  // eventsource 5 needs Node >= 22.12; 4.x is the line for Node 20.
  execFileSync('npm', ['install', '--prefix', PREFIX, '--no-audit', '--no-fund',
    '@openfeature/ofrep-web-provider@^0.4', '@openfeature/web-sdk@^1.10', 'eventsource@^4'],
  { stdio: ['ignore', 'inherit', 'inherit'] });
}
const require = createRequire(join(PREFIX, 'package.json'));
const { EventSource } = require('eventsource');
const { OpenFeature, ProviderEvents } = require('@openfeature/web-sdk');
const { OFREPWebProvider } = require('@openfeature/ofrep-web-provider');
const versions = Object.fromEntries(
  ['@openfeature/ofrep-web-provider', '@openfeature/web-sdk', '@openfeature/ofrep-core', 'eventsource']
    .map((p) => [p, JSON.parse(readFileSync(join(PREFIX, 'node_modules', p, 'package.json'), 'utf8')).version]),
);

// ------------------------------------------------------------------------------------------
// Instrumentation: the provider uses the global EventSource (Node 20 has none) and our fetch.
const sse = { opened: 0, messages: [], errors: 0, urls: new Set() };
class TimedEventSource extends EventSource {
  constructor(url, init) {
    super(url, init);
    sse.opened += 1;
    sse.urls.add(String(url).replace(/ticket=[^&]+/, 'ticket=…'));
    this.addEventListener('message', (e) => sse.messages.push({ at: performance.now(), data: e.data, id: e.lastEventId }));
    this.addEventListener('error', () => { sse.errors += 1; });
  }
}
globalThis.EventSource = TimedEventSource;

const fetches = [];
async function timedFetch(input, init) {
  const req = input instanceof Request ? input : new Request(input, init);
  const started = performance.now();
  const res = await fetch(req, init);
  const u = new URL(req.url);
  fetches.push({
    at: started,
    ms: performance.now() - started,
    status: res.status,
    path: u.pathname,
    flagConfigEtag: u.searchParams.has('flagConfigEtag'),
    flagConfigLastModified: u.searchParams.has('flagConfigLastModified'),
    ifNoneMatch: req.headers.has('if-none-match'),
  });
  return res;
}

// ------------------------------------------------------------------------------------------
// Admin API.
async function admin(method, path, body) {
  const res = await fetch(`${URL_BASE}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function clientToken() {
  const given = opt('client-token', seed.client_token);
  if (given) return given;
  const t = await admin('POST', '/tokens', { name: 'bench-sse-latency', kind: 'client', project: PROJECT, environment: ENV });
  return t.secret;
}

const setEnabled = (enabled) =>
  admin('PATCH', `/projects/${PROJECT}/flags/${FLAG}/environments/${ENV}`, { enabled });

// ------------------------------------------------------------------------------------------
function pct(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // The flag starts enabled (serving true) in the seeded data set.
  await setEnabled(true);
  const token = await clientToken();
  const provider = new OFREPWebProvider({
    baseUrl: URL_BASE,
    headers: [['Authorization', `Bearer ${token}`]],
    pollInterval: 0, // the default since 0.4 (ADR-0010); explicit here
    changeDetection: 'sse', // the default: SSE when the bulk response carries eventStreams
    cacheMode: 'disabled', // no localStorage in Node; always fetch on initialize
    disableVisibilityRefresh: true, // no document in Node anyway
    fetchImplementation: timedFetch,
  });
  await OpenFeature.setProviderAndWait(provider, CONTEXT);
  const client = OpenFeature.getClient();

  await sleep(300);
  if (sse.opened === 0) {
    console.error('sse_latency: the provider opened no event stream: the bulk response carried no '
      + '`eventStreams` with type "sse" (or EventSource was missing). Nothing to measure.');
    await OpenFeature.close();
    process.exit(3);
  }
  if (client.getBooleanValue(FLAG, false) !== true) {
    throw new Error(`flag ${FLAG} does not evaluate to true at start`);
  }

  let waiter = null;
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, () => {
    if (waiter && client.getBooleanValue(FLAG, !waiter.want) === waiter.want) {
      const w = waiter;
      waiter = null;
      w.resolve(performance.now());
    }
  });

  const rows = [];
  let missed = 0;
  for (let i = 0; i < CHANGES; i += 1) {
    const want = i % 2 === 1; // false, true, false, …
    const visible = new Promise((resolve) => { waiter = { want, resolve }; });
    const msgBefore = sse.messages.length;
    const t0 = performance.now();
    await setEnabled(want);
    const tWrite = performance.now();
    const tVisible = await Promise.race([visible, sleep(TIMEOUT_MS).then(() => null)]);
    const ev = sse.messages.slice(msgBefore).find((m) => m.at >= t0);
    if (tVisible === null) {
      missed += 1;
      waiter = null;
      // Resynchronise: make sure the next change starts from the expected state.
      await sleep(200);
    } else {
      rows.push({ write: tWrite - t0, event: ev ? ev.at - t0 : NaN, visible: tVisible - t0 });
    }
    await sleep(GAP_MS);
  }
  await setEnabled(true);

  const stage = (k) => {
    const xs = rows.map((r) => r[k]).filter((x) => Number.isFinite(x));
    return { n: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), p99: pct(xs, 99), max: pct(xs, 100) };
  };
  const refetches = fetches.filter((f) => f.path.endsWith('/evaluate/flags')).slice(1);
  const statusCounts = refetches.reduce((a, f) => ({ ...a, [f.status]: (a[f.status] || 0) + 1 }), {});
  const result = {
    changes: CHANGES,
    measured: rows.length,
    missed,
    write_ms: stage('write'),
    event_ms: stage('event'),
    visible_ms: stage('visible'),
    sse: { opened: sse.opened, messages: sse.messages.length, errors: sse.errors, urls: [...sse.urls] },
    refetches: {
      count: refetches.length,
      status: statusCounts,
      with_flagConfigEtag: refetches.filter((f) => f.flagConfigEtag).length,
      with_flagConfigLastModified: refetches.filter((f) => f.flagConfigLastModified).length,
      with_if_none_match: refetches.filter((f) => f.ifNoneMatch).length,
      p50_ms: pct(refetches.map((f) => f.ms), 50),
    },
    sample_event: sse.messages[sse.messages.length - 1]?.data,
    versions,
    node: process.version,
  };
  await OpenFeature.close();

  if (JSON_OUT) {
    console.log(JSON.stringify(result));
    return;
  }
  const f = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '—');
  console.log(`\nchange → served through ${Object.entries(versions).map(([k, v]) => `${k}@${v}`).join(', ')} (Node ${process.version})`);
  console.log(`${rows.length}/${CHANGES} changes seen (${missed} missed after ${TIMEOUT_MS} ms), gap ${GAP_MS} ms\n`);
  console.log('stage                         p50        p90        p99        max');
  for (const [name, k] of [['PATCH answered', 'write_ms'], ['SSE event received', 'event_ms'], ['new value served', 'visible_ms']]) {
    const s = result[k];
    console.log(`${name.padEnd(24)} ${f(s.p50).padStart(10)} ${f(s.p90).padStart(10)} ${f(s.p99).padStart(10)} ${f(s.max).padStart(10)}`);
  }
  console.log(`\nSSE: ${sse.opened} connection(s), ${sse.messages.length} messages, ${sse.errors} errors; last event data: ${result.sample_event}`);
  console.log(`re-fetches: ${refetches.length}, statuses ${JSON.stringify(statusCounts)}, `
    + `flagConfigEtag on ${result.refetches.with_flagConfigEtag}, flagConfigLastModified on ${result.refetches.with_flagConfigLastModified}, `
    + `If-None-Match on ${result.refetches.with_if_none_match}; p50 ${f(result.refetches.p50_ms)}`);
  console.log(`\n| stage | p50 | p99 |\n|---|--:|--:|`);
  for (const [name, k] of [['PATCH answered', 'write_ms'], ['SSE event at the provider', 'event_ms'], ['new value served by the web provider', 'visible_ms']]) {
    console.log(`| ${name} | ${f(result[k].p50)} | ${f(result[k].p99)} |`);
  }
  console.log(JSON.stringify(result));
}

main().catch(async (e) => {
  console.error('sse_latency:', e);
  try { await OpenFeature.close(); } catch { /* ignore */ }
  process.exit(1);
});
