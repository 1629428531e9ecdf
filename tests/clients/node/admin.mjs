// Shared by server.test.mjs and web.test.mjs: the environment, the admin API over plain
// fetch, and a check counter. Only the evaluations go through the real OpenFeature SDKs.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

// The packages are loaded with require() (their CommonJS builds), so NODE_PATH can point at
// an installed node_modules outside this folder (ESM `import` ignores NODE_PATH), and every
// package gets the same single instance of @openfeature/core.
export const require = createRequire(import.meta.url);

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    throw new Error(`${name} is not set`);
  }
  return v;
}

export const BASE = env('HATA_URL').replace(/\/+$/, '');
export const ADMIN = env('HATA_ADMIN_TOKEN');
export const PROJECT = env('HATA_PROJECT');
export const ENV = env('HATA_ENVIRONMENT', 'development');
export { env };

let count = 0;
export const checks = () => count;

/** assert.deepStrictEqual, counted. */
export function eq(actual, expected, what) {
  assert.deepStrictEqual(actual, expected, what);
  count += 1;
}

/** assert.ok, counted. */
export function ok(cond, what) {
  assert.ok(cond, what);
  count += 1;
}

/** One admin API call; a non-2xx answer fails the script with the problem body. */
export async function admin(method, path, body, contentType = 'application/json') {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function createFlag(flag) {
  const { status } = await admin('POST', `/projects/${PROJECT}/flags`, flag);
  eq(status, 201, `create ${flag.key}`);
}

export async function patchEnv(flag, patch) {
  const { status } = await admin(
    'PATCH',
    `/projects/${PROJECT}/flags/${flag}/environments/${ENV}`,
    patch,
    'application/merge-patch+json',
  );
  eq(status, 200, `patch ${flag}`);
}

/** Checks a successful EvaluationDetails: value, variant, reason and the given metadata. */
export function expectDetails(details, { value, variant, reason, metadata = {} }) {
  const what = `${details.flagKey}: ${JSON.stringify(details)}`;
  eq(details.errorCode, undefined, `no error expected, ${what}`);
  eq(details.value, value, `value, ${what}`);
  eq(details.variant, variant, `variant, ${what}`);
  eq(details.reason, reason, `reason, ${what}`);
  for (const [k, v] of Object.entries(metadata)) {
    eq(details.flagMetadata?.[k], v, `metadata ${k}, ${what}`);
  }
}
