// The real web SDK (@openfeature/web-sdk) with the OFREP web provider
// (@openfeature/ofrep-web-provider) against a running hata, in Node, with the `eventsource`
// package as the EventSource a browser would have. Polling is off: a change made through the
// admin API must reach the provider through the OFREP event stream alone (ADR-0008). A plain
// node script: the first failed assertion ends it with a non-zero exit.
//
// Environment: HATA_URL, HATA_ADMIN_TOKEN, HATA_CLIENT_TOKEN (a client token's secret, bound to
// HATA_PROJECT / HATA_ENVIRONMENT), HATA_PROJECT, HATA_ENVIRONMENT (default development).
// Its flags all start with `web-`. It expects no other writes to its environment while it
// runs (it counts the requests the provider makes).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  BASE,
  checks,
  createFlag,
  env,
  eq,
  expectDetails,
  ok,
  patchEnv,
  require,
} from './admin.mjs';

const CLIENT_TOKEN = env('HATA_CLIENT_TOKEN');
const ENV = env('HATA_ENVIRONMENT', 'development');
const ORIGIN = 'http://app.example.test';
const EVENT_TIMEOUT_MS = 10_000;

// --- what a browser would do, recorded ----------------------------------------------------------

const t0 = performance.now();
const now = () => performance.now() - t0;

/** Every request the provider makes (bulk evaluations and event-stream connections). */
const requests = [];
/** Every SSE message the provider's EventSource receives. */
const sseMessages = [];

/** fetch with an Origin header, like a page's; records the request and the response. */
async function recordingFetch(input, init) {
  const req = new Request(input, init);
  req.headers.set('Origin', ORIGIN);
  const entry = {
    start: now(),
    method: req.method,
    url: new URL(req.url),
    requestHeaders: [...req.headers.keys()],
    ifNoneMatch: req.headers.get('if-none-match'),
  };
  requests.push(entry);
  const res = await fetch(req);
  entry.end = now();
  entry.status = res.status;
  entry.etag = res.headers.get('etag');
  entry.contentType = res.headers.get('content-type');
  entry.allowOrigin = res.headers.get('access-control-allow-origin');
  entry.exposeHeaders = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase();
  return res;
}

const { EventSource } = require('eventsource');

/** The `eventsource` package's EventSource, fetching through recordingFetch. */
class RecordingEventSource extends EventSource {
  constructor(url, init) {
    super(url, { ...init, fetch: recordingFetch });
    this.addEventListener('message', (e) => {
      sseMessages.push({ at: now(), id: e.lastEventId, data: JSON.parse(e.data) });
    });
  }
}
// The provider looks for the global (as in a browser); Node 20 has none.
globalThis.EventSource = RecordingEventSource;

const {
  OpenFeature,
  ProviderEvents,
  ProviderStatus,
  ErrorCode,
  StandardResolutionReasons: R,
} = require('@openfeature/web-sdk');
const { OFREPWebProvider } = require('@openfeature/ofrep-web-provider');

// --- flags, made through the admin API ---------------------------------------------------------

await createFlag({
  key: 'web-bool',
  name: 'Web boolean',
  type: 'boolean',
  environments: {
    [ENV]: {
      enabled: true,
      off_variant: 'off',
      rules: [
        {
          id: 'beta-plan',
          conditions: [{ attribute: 'plan', operator: 'in', values: ['beta'] }],
          serve: { variant: 'on' },
        },
      ],
      default: { variant: 'off' },
    },
  },
});
await createFlag({
  key: 'web-string',
  name: 'Web string',
  type: 'string',
  variants: [
    { key: 'a', value: 'alpha' },
    { key: 'b', value: 'bravo' },
  ],
  environments: { [ENV]: { enabled: true, off_variant: 'a', default: { variant: 'b' } } },
});
await createFlag({
  key: 'web-number',
  name: 'Web number',
  type: 'number',
  variants: [
    { key: 'small', value: 1.5 },
    { key: 'big', value: 42 },
  ],
  environments: {
    [ENV]: {
      enabled: true,
      off_variant: 'small',
      default: {
        rollout: {
          weights: [
            { variant: 'small', weight: 0 },
            { variant: 'big', weight: 100000 },
          ],
        },
      },
    },
  },
});
await createFlag({
  key: 'web-object',
  name: 'Web object',
  type: 'json',
  variants: [
    { key: 'red', value: { color: 'red', sizes: [1, 2, 3] } },
    { key: 'blue', value: { color: 'blue', sizes: [] } },
  ],
  environments: { [ENV]: { enabled: false, off_variant: 'red', default: { variant: 'blue' } } },
});

// --- the real SDK --------------------------------------------------------------------------------

const provider = new OFREPWebProvider({
  baseUrl: BASE,
  headers: [['Authorization', `Bearer ${CLIENT_TOKEN}`]],
  fetchImplementation: recordingFetch,
  pollInterval: 0, // no timer polling (also the default since 0.4)
  changeDetection: 'sse', // use the bulk response's eventStreams
  disableVisibilityRefresh: true, // no page to become visible here anyway
  cacheMode: 'disabled', // no localStorage in Node; always ask the server at start
});

await OpenFeature.setContext({ targetingKey: 'user-1', plan: 'beta' });
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
eq(client.providerStatus, ProviderStatus.READY, 'provider READY');

// The initial bulk evaluation, then one event-stream connection from its eventStreams.
const initial = requests.filter((r) => r.url.pathname === '/ofrep/v1/evaluate/flags');
eq(initial.length, 1, 'one bulk evaluation at start');
eq(initial[0].status, 200, 'initial bulk evaluation 200');
eq(initial[0].url.search, '', 'initial bulk evaluation without SSE metadata');
ok(initial[0].etag, 'initial bulk evaluation has an ETag');

// all four types, every reason
expectDetails(client.getBooleanDetails('web-bool', false), {
  value: true,
  variant: 'on',
  reason: R.TARGETING_MATCH,
  metadata: { ruleId: 'beta-plan', flagVersion: 1 },
});
expectDetails(client.getStringDetails('web-string', 'fallback'), {
  value: 'bravo',
  variant: 'b',
  reason: R.STATIC,
  metadata: { flagVersion: 1 },
});
expectDetails(client.getNumberDetails('web-number', 0), {
  value: 42,
  variant: 'big',
  reason: R.SPLIT,
  metadata: { flagVersion: 1 },
});
expectDetails(client.getObjectDetails('web-object', {}), {
  value: { color: 'red', sizes: [1, 2, 3] },
  variant: 'red',
  reason: R.DISABLED,
  metadata: { flagVersion: 1 },
});

// missing flag: default value with FLAG_NOT_FOUND
const missing = client.getStringDetails('web-missing', 'the-default');
eq(
  [missing.value, missing.errorCode, missing.reason],
  ['the-default', ErrorCode.FLAG_NOT_FOUND, R.ERROR],
  `missing flag: ${JSON.stringify(missing)}`,
);

// The event stream is connected (give it a moment to open if it has not yet).
for (let i = 0; i < 250 && !requests.some((r) => isSse(r) && r.status !== undefined); i++) {
  await sleep(20);
}
function isSse(r) {
  return r.url.pathname === '/ofrep/v1/events';
}
const sse = requests.filter(isSse);
eq(sse.length, 1, 'one event-stream connection');
eq(sse[0].status, 200, 'event stream 200');
ok(sse[0].contentType?.startsWith('text/event-stream'), `event stream type ${sse[0].contentType}`);

// --- a change through the admin API, seen through the event stream alone -------------------------

/**
 * Makes `patch` to `flag` and waits for the provider's ConfigurationChanged. Returns the
 * latencies and the requests the provider made meanwhile.
 */
async function changeAndWait(flag, patch) {
  const before = requests.length;
  const messagesBefore = sseMessages.length;
  let onChange;
  const changed = new Promise((resolve) => {
    onChange = (details) => resolve({ at: now(), details });
    client.addHandler(ProviderEvents.ConfigurationChanged, onChange);
  });
  const sent = now();
  await patchEnv(flag, patch);
  const answered = now();
  // unref: this timer must not keep the process alive once the event has come
  const timeout = sleep(EVENT_TIMEOUT_MS, null, { ref: false });
  const event = await Promise.race([changed, timeout]);
  client.removeHandler(ProviderEvents.ConfigurationChanged, onChange);
  const during = requests.slice(before);
  const messages = sseMessages.slice(messagesBefore);
  ok(
    event,
    `no ConfigurationChanged within ${EVENT_TIMEOUT_MS} ms of changing ${flag}; ` +
      `SSE messages: ${JSON.stringify(messages)}; requests: ${JSON.stringify(during)}`,
  );
  ok(event.details.flagsChanged?.includes(flag), `flagsChanged names ${flag}: ${JSON.stringify(event.details)}`);

  // It came through SSE: a refetchEvaluation message, then exactly one bulk re-fetch that the
  // message triggered (it carries the message's etag as flagConfigEtag), and nothing else.
  const refetch = messages.find((m) => m.data.type === 'refetchEvaluation');
  ok(refetch, `a refetchEvaluation message: ${JSON.stringify(messages)}`);
  ok(/^\d+\.\d+$/.test(refetch.id), `event id <envid>.<rev>: ${refetch.id}`);
  eq(refetch.data.etag, `"${refetch.id}"`, 'event etag is the quoted id');
  ok(Number.isInteger(refetch.data.lastModified), `lastModified in Unix seconds: ${refetch.data.lastModified}`);
  const sinceEpoch = Date.now() / 1000 - refetch.data.lastModified;
  ok(sinceEpoch > -5 && sinceEpoch < 60, `lastModified is about now: ${refetch.data.lastModified}`);
  eq(during.length, 1, `exactly one request between the change and the event: ${JSON.stringify(during)}`);
  const [req] = during;
  eq(req.url.pathname, '/ofrep/v1/evaluate/flags', 'the one request is a bulk evaluation');
  eq(req.url.searchParams.get('flagConfigEtag'), refetch.data.etag, 'flagConfigEtag from the message');
  eq(req.url.searchParams.get('flagConfigLastModified'), String(refetch.data.lastModified), 'flagConfigLastModified');
  ok(req.start >= refetch.at, 'the re-fetch started after the message arrived');
  ok(req.ifNoneMatch, 'the re-fetch revalidates with If-None-Match');
  eq(req.status, 200, 'the re-fetch got the new evaluations');
  ok(req.etag && req.etag !== req.ifNoneMatch, `a new ETag: ${req.etag}`);
  return {
    fromResponse: event.at - answered,
    fromRequest: event.at - sent,
    message: refetch.at - sent,
  };
}

const first = await changeAndWait('web-string', { default: { variant: 'a' } });
expectDetails(client.getStringDetails('web-string', 'fallback'), {
  value: 'alpha',
  variant: 'a',
  reason: R.STATIC,
  metadata: { flagVersion: 2 },
});

const second = await changeAndWait('web-bool', { enabled: false }); // the kill switch
expectDetails(client.getBooleanDetails('web-bool', true), {
  value: false,
  variant: 'off',
  reason: R.DISABLED,
  metadata: { flagVersion: 2 },
});

const third = await changeAndWait('web-object', { enabled: true });
expectDetails(client.getObjectDetails('web-object', {}), {
  value: { color: 'blue', sizes: [] },
  variant: 'blue',
  reason: R.STATIC,
  metadata: { flagVersion: 2 },
});

// No polling: quiet for a while, no request at all; still the one event-stream connection.
const quietFrom = requests.length;
await sleep(1500);
eq(requests.slice(quietFrom), [], 'no request while nothing changes (polling is off)');
eq(requests.filter(isSse).length, 1, 'still one event-stream connection');

// What a browser would additionally demand: CORS on every answer, the ETag readable by the page,
// and a preflight that allows every header the provider sent.
for (const r of requests) {
  ok(r.allowOrigin === '*' || r.allowOrigin === ORIGIN, `CORS allow-origin on ${r.url.pathname}: ${r.allowOrigin}`);
  if (r.url.pathname === '/ofrep/v1/evaluate/flags') {
    ok(r.exposeHeaders.split(/\s*,\s*/).includes('etag'), `ETag exposed to the page: ${r.exposeHeaders}`);
  }
}
const safelisted = new Set(['accept', 'accept-language', 'content-language', 'origin']);
for (const r of requests) {
  const wanted = r.requestHeaders.filter((h) => !safelisted.has(h));
  if (wanted.length === 0) continue;
  const pre = await fetch(`${r.url.origin}${r.url.pathname}`, {
    method: 'OPTIONS',
    headers: {
      Origin: ORIGIN,
      'Access-Control-Request-Method': r.method,
      'Access-Control-Request-Headers': wanted.join(','),
    },
  });
  ok(pre.status >= 200 && pre.status < 300, `preflight for ${r.method} ${r.url.pathname}: ${pre.status}`);
  const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
  for (const h of wanted) {
    ok(allowed.includes(h) || allowed.includes('*'), `preflight allows ${h} on ${r.url.pathname}: ${allowed}`);
  }
}

await OpenFeature.close();

const ms = (x) => x.toFixed(1);
for (const [name, l] of [
  ['web-string default', first],
  ['web-bool kill switch', second],
  ['web-object enabled', third],
]) {
  console.log(
    `web provider change latency (${name}): ${ms(l.fromResponse)} ms from the admin response ` +
      `to ConfigurationChanged (${ms(l.fromRequest)} ms from the request; SSE message at ${ms(l.message)} ms; ` +
      'the provider debounces messages by 50 ms before it re-fetches)',
  );
}
console.log(`node @openfeature/web-sdk + @openfeature/ofrep-web-provider (SSE): ${checks()} checks passed`);
