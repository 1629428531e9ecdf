// The real Node server SDK (@openfeature/server-sdk) with the OFREP server provider
// (@openfeature/ofrep-provider) against a running hata. A plain node script: the first failed
// assertion ends it with a non-zero exit.
//
// Environment: HATA_URL, HATA_ADMIN_TOKEN, HATA_SERVER_TOKEN (a server token's secret, bound
// to HATA_PROJECT / HATA_ENVIRONMENT), HATA_PROJECT, HATA_ENVIRONMENT (default development).
// Its flags all start with `node-`, so it can share a server with the other clients.
import {
  BASE,
  checks,
  createFlag,
  env,
  eq,
  expectDetails,
  patchEnv,
  require,
} from './admin.mjs';

const { OpenFeature, ErrorCode, StandardResolutionReasons: R } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

const SERVER_TOKEN = env('HATA_SERVER_TOKEN');
const ENV = env('HATA_ENVIRONMENT', 'development');

// --- flags, made through the admin API ---------------------------------------------------------

await createFlag({
  key: 'node-bool',
  name: 'Node boolean',
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
  key: 'node-string',
  name: 'Node string',
  type: 'string',
  variants: [
    { key: 'a', value: 'alpha' },
    { key: 'b', value: 'bravo' },
  ],
  environments: { [ENV]: { enabled: true, off_variant: 'a', default: { variant: 'b' } } },
});
await createFlag({
  key: 'node-number',
  name: 'Node number',
  type: 'number',
  variants: [
    { key: 'small', value: 1.5 },
    { key: 'big', value: 42 },
  ],
  environments: {
    [ENV]: {
      enabled: true,
      off_variant: 'small',
      targets: [{ variant: 'small', values: ['user-vip'] }],
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
  key: 'node-object',
  name: 'Node object',
  type: 'json',
  variants: [
    { key: 'red', value: { color: 'red', sizes: [1, 2, 3], nested: { on: true } } },
    { key: 'blue', value: { color: 'blue', sizes: [] } },
  ],
  environments: { [ENV]: { enabled: false, off_variant: 'red', default: { variant: 'blue' } } },
});

// --- the real SDK (authenticating with X-API-Key this time) --------------------------------------

await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: BASE, headers: [['X-API-Key', SERVER_TOKEN]] }),
);
const client = OpenFeature.getClient('hata-node-server-test');

const beta = { targetingKey: 'user-1', plan: 'beta' };
const free = { targetingKey: 'user-2', plan: 'free' };
const vip = { targetingKey: 'user-vip' };

// boolean: a rule decides, then the default
expectDetails(await client.getBooleanDetails('node-bool', false, beta), {
  value: true,
  variant: 'on',
  reason: R.TARGETING_MATCH,
  metadata: { ruleId: 'beta-plan', flagVersion: 1 },
});
expectDetails(await client.getBooleanDetails('node-bool', true, free), {
  value: false,
  variant: 'off',
  reason: R.DEFAULT,
  metadata: { flagVersion: 1 },
});
eq(await client.getBooleanValue('node-bool', false, beta), true, 'getBooleanValue');

// string: a fixed default and nothing else -> STATIC
expectDetails(await client.getStringDetails('node-string', 'fallback', free), {
  value: 'bravo',
  variant: 'b',
  reason: R.STATIC,
  metadata: { flagVersion: 1 },
});

// number: a rollout -> SPLIT; a target on the targetingKey -> TARGETING_MATCH
expectDetails(await client.getNumberDetails('node-number', 0, beta), {
  value: 42,
  variant: 'big',
  reason: R.SPLIT,
  metadata: { flagVersion: 1 },
});
expectDetails(await client.getNumberDetails('node-number', 0, vip), {
  value: 1.5,
  variant: 'small',
  reason: R.TARGETING_MATCH,
});

// object: a disabled flag serves its off variant -> DISABLED
expectDetails(await client.getObjectDetails('node-object', { color: 'none' }, beta), {
  value: { color: 'red', sizes: [1, 2, 3], nested: { on: true } },
  variant: 'red',
  reason: R.DISABLED,
  metadata: { flagVersion: 1 },
});

// no targetingKey to bucket by: the rollout serves its first variant with weight > 0 and
// reports DEFAULT, with a note; with no context at all the static flag still answers
expectDetails(await client.getNumberDetails('node-number', 0, { plan: 'beta' }), {
  value: 42,
  variant: 'big',
  reason: R.DEFAULT,
  metadata: { hataNote: 'bucket_by attribute missing', flagVersion: 1 },
});
expectDetails(await client.getStringDetails('node-string', 'fallback'), {
  value: 'bravo',
  variant: 'b',
  reason: R.STATIC,
});

// missing flag: the SDK falls back to the caller's default with FLAG_NOT_FOUND
const missing = await client.getStringDetails('node-missing', 'the-default', beta);
eq(missing.value, 'the-default', `default value, ${JSON.stringify(missing)}`);
eq(missing.errorCode, ErrorCode.FLAG_NOT_FOUND, `FLAG_NOT_FOUND, ${JSON.stringify(missing)}`);
eq(missing.reason, R.ERROR, `reason ERROR, ${JSON.stringify(missing)}`);
const missingNumber = await client.getNumberDetails('node-missing', 7, beta);
eq([missingNumber.value, missingNumber.errorCode], [7, ErrorCode.FLAG_NOT_FOUND], 'number default');

// wrong type: a string flag asked for as a number -> TYPE_MISMATCH, default served
const mismatch = await client.getNumberDetails('node-string', 3, beta);
eq([mismatch.value, mismatch.errorCode], [3, ErrorCode.TYPE_MISMATCH], 'TYPE_MISMATCH');

// --- changes through the admin API: seen on the very next evaluation -----------------------------

await patchEnv('node-string', { default: { variant: 'a' } });
expectDetails(await client.getStringDetails('node-string', 'fallback', free), {
  value: 'alpha',
  variant: 'a',
  reason: R.STATIC,
  metadata: { flagVersion: 2 },
});

await patchEnv('node-bool', { enabled: false }); // the kill switch
expectDetails(await client.getBooleanDetails('node-bool', true, beta), {
  value: false,
  variant: 'off',
  reason: R.DISABLED,
  metadata: { flagVersion: 2 },
});

await patchEnv('node-object', { enabled: true });
expectDetails(await client.getObjectDetails('node-object', {}, beta), {
  value: { color: 'blue', sizes: [] },
  variant: 'blue',
  reason: R.STATIC,
  metadata: { flagVersion: 2 },
});

await OpenFeature.close();
console.log(`node @openfeature/server-sdk + @openfeature/ofrep-provider: ${checks()} checks passed`);
