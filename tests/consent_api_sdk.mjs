// The consent API driven by the source platform's published JS SDK (@wix/sdk with
// @wix/marketing_marketing-consent), as a client written for the platform would: every method,
// against a live server. The SDK builds each request and reads each answer itself; only its
// `fetch` is pointed at the server (the SDK always addresses https://www.wixapis.com). Every
// field of every answer is checked against the SDK's own type declarations of the REST shapes
// (type-bundles/meta.bundle.d.ts).
//
// Usage: node consent_api_sdk.mjs BASE_URL API_KEY
// Prints {"calls": [method, ...], "problems": [message, ...]} as JSON.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { ApiKeyStrategy, createClient } from '@wix/sdk';
import * as marketingConsent from '@wix/marketing_marketing-consent';

const [baseUrl, apiKey] = process.argv.slice(2);
const SDK_HOST = 'https://www.wixapis.com';
const problems = [];
const calls = [];

// --- the SDK's declarations ----------------------------------------------------------------------

function splitTopLevel(text, separator) {
  const parts = [];
  let depth = 0;
  let current = '';
  for (const character of text) {
    if ('{<(['.includes(character)) depth += 1;
    if ('}>)]'.includes(character)) depth -= 1;
    if (character === separator && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter(Boolean);
}

function blockAt(text, open) {
  let depth = 0;
  for (let index = open; index < text.length; index += 1) {
    if (text[index] === '{') depth += 1;
    if (text[index] === '}') {
      depth -= 1;
      if (depth === 0) return [text.slice(open + 1, index), index];
    }
  }
  throw new Error('Unbalanced braces in the declarations.');
}

function parseDeclarations(source) {
  const text = source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/=>/g, '->');
  const interfaces = {};
  const enums = {};
  const methods = {};
  const declaration = /(?:declare\s+)?(interface|enum)\s+([\w$]+)(?:\s+extends\s+([^{]+))?\s*\{/g;
  let match;
  while ((match = declaration.exec(text)) !== null) {
    const [body, end] = blockAt(text, declaration.lastIndex - 1);
    const [, kind, name, bases] = match;
    if (kind === 'enum') {
      enums[name] = new Set([...body.matchAll(/=\s*"([^"]*)"/g)].map((value) => value[1]));
    } else {
      const fields = {};
      for (const member of splitTopLevel(body, ';')) {
        const colon = member.indexOf(':');
        const key = member.slice(0, colon).trim();
        fields[key.replace(/\?$/, '')] = {
          type: member.slice(colon + 1).trim(),
          optional: key.endsWith('?'),
        };
      }
      interfaces[name] = { bases: bases ? bases.split(',').map((b) => b.trim()) : [], fields };
    }
    declaration.lastIndex = end + 1;
  }
  for (const found of text.matchAll(/declare function (\w+)\(\): __PublicMethodMetaInfo<([\s\S]*?)>;\n/g)) {
    const args = splitTopLevel(found[2], ',');
    methods[found[1]] = { httpMethod: args[0].replace(/'/g, ''), response: args[5] };
  }
  return { interfaces, enums, methods };
}

const require = createRequire(import.meta.url);
const packageDir = dirname(require.resolve('@wix/marketing_marketing-consent/package.json'));
const declarations = parseDeclarations(
  readFileSync(join(packageDir, 'type-bundles', 'meta.bundle.d.ts'), 'utf8'),
);

// --- checking a JSON value against a declared type ---------------------------------------------

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function fieldsOf(name) {
  const declared = declarations.interfaces[name];
  if (!declared) throw new Error(`No interface ${name} in the declarations.`);
  return Object.assign({}, ...declared.bases.map(fieldsOf), declared.fields);
}

function checkObject(value, names, path, found) {
  if (!isObject(value)) {
    found.push(`${path}: ${JSON.stringify(value)} is not an object (${names.join(' & ')})`);
    return;
  }
  const parts = names.map((name) => ({ name, fields: fieldsOf(name) }));
  for (const [key, item] of Object.entries(value)) {
    const types = parts.filter((part) => key in part.fields).map((part) => part.fields[key].type);
    if (types.length === 0) found.push(`${path}.${key}: not a field of ${names.join(' & ')}`);
    else check(item, types, `${path}.${key}`, found);
  }
  // The generated NonNullableFields types list fields that are never null when present (a
  // oneOf's fields among them), not fields that are always present.
  for (const part of parts.filter(({ name }) => !/NonNullableFields/.test(name))) {
    for (const [key, field] of Object.entries(part.fields)) {
      if (!field.optional && !(key in value)) found.push(`${path}.${key}: missing (${part.name})`);
    }
  }
}

/** Check a JSON value against the intersection of `types` (each a TypeScript type). */
function check(value, types, path, found) {
  const all = (Array.isArray(types) ? types : [types]).flatMap((type) => splitTopLevel(type, '&'));
  const unionAt = all.findIndex((type) => splitTopLevel(type, '|').length > 1);
  if (unionAt >= 0) {
    const rest = all.filter((_, index) => index !== unionAt);
    const fits = splitTopLevel(all[unionAt], '|').some((member) => {
      const attempt = [];
      check(value, [...rest, member], path, attempt);
      return attempt.length === 0;
    });
    if (!fits) found.push(`${path}: ${JSON.stringify(value)} is not ${all.join(' & ')}`);
    return;
  }
  if (all.every((type) => declarations.interfaces[type])) {
    checkObject(value, all, path, found);
    return;
  }
  if (all.every((type) => type.endsWith('[]'))) {
    if (!Array.isArray(value)) found.push(`${path}: ${JSON.stringify(value)} is not ${all[0]}`);
    else {
      const items = all.map((type) => type.slice(0, -2));
      value.forEach((item, index) => check(item, items, `${path}[${index}]`, found));
    }
    return;
  }
  for (const type of all) checkOne(value, type, path, found);
}

function checkOne(value, type, path, found) {
  const record = type.match(/^Record<string,\s*([\s\S]+)>$/);
  if (record) {
    if (!isObject(value)) found.push(`${path}: ${JSON.stringify(value)} is not ${type}`);
    else for (const [key, item] of Object.entries(value)) check(item, record[1], `${path}.${key}`, found);
    return;
  }
  if (declarations.interfaces[type] || type.endsWith('[]')) {
    check(value, [type], path, found);
    return;
  }
  const fits = {
    string: () => typeof value === 'string',
    number: () => typeof value === 'number',
    boolean: () => typeof value === 'boolean',
    null: () => value === null,
    any: () => true,
    // A REST date: an ISO-8601 string (the SDK turns it into a Date).
    Date: () => typeof value === 'string' && ISO_DATE.test(value) && !Number.isNaN(Date.parse(value)),
  }[type];
  if (fits) {
    if (!fits()) found.push(`${path}: ${JSON.stringify(value)} is not ${type}`);
  } else if (declarations.enums[type]) {
    if (!declarations.enums[type].has(value)) found.push(`${path}: ${JSON.stringify(value)} is not one of ${type}`);
  } else {
    found.push(`${path}: the declarations have no type ${type}`);
  }
}

// --- the client ----------------------------------------------------------------------------------

const answers = [];

async function toServer(url, init) {
  const target = String(url).replace(SDK_HOST, baseUrl);
  const response = await fetch(target, init);
  const text = await response.clone().text();
  answers.push({ method: init?.method, url: target, status: response.status, text });
  return response;
}

const client = createClient({
  modules: { marketingConsent },
  auth: ApiKeyStrategy({ apiKey }),
  fetch: toServer,
});
const sdk = client.marketingConsent;

function expect(condition, message) {
  if (!condition) problems.push(message);
}

/** Call one SDK method; check the raw answer against the method's declared REST response. */
async function call(method, run) {
  calls.push(method);
  const before = answers.length;
  let result;
  try {
    result = await run();
  } catch (error) {
    const answer = answers[answers.length - 1];
    problems.push(`${method}: the SDK threw ${error}; the server said ${answer?.status} ${answer?.text}`);
    return undefined;
  }
  const declared = declarations.methods[method];
  for (const answer of answers.slice(before)) {
    expect(answer.status === 200, `${method}: status ${answer.status}`);
    expect(answer.method === declared.httpMethod, `${method}: sent ${answer.method}`);
    check(JSON.parse(answer.text), declared.response, method, problems);
  }
  expect(answers.length > before, `${method}: no request reached the server`);
  return result;
}

const pending = await call('upsertMarketingConsent', () =>
  sdk.upsertMarketingConsent({
    details: { type: 'EMAIL', email: 'sdk-pending@example.com' },
    state: 'PENDING',
    lastConfirmationActivity: {
      source: 'IN_PERSON',
      description: 'Person filled a printed document.',
      _updatedDate: new Date('2023-05-01T00:00:00Z'),
      optInLevel: 'DOUBLE_CONFIRMATION',
    },
    extendedFields: { namespaces: { shop: { store: '12' } } },
  }),
);
expect(pending?.marketingConsent?.state === 'PENDING', 'upsert: not PENDING');
expect(pending?.link?.type === 'CONFIRMATION', 'upsert: no CONFIRMATION link');
const activityDate = pending?.marketingConsent?.lastConfirmationActivity?._updatedDate;
expect(
  activityDate !== undefined && new Date(activityDate).toISOString() === '2023-05-01T00:00:00.000Z',
  `upsert: the activity date came back as ${JSON.stringify(activityDate)}`,
);

const noDescription = await call('upsertMarketingConsent', () =>
  sdk.upsertMarketingConsent({
    details: { type: 'PHONE', phone: '+1 415 555 0199' },
    state: 'REVOKED',
    lastRevokeActivity: { source: 'FORM', description: null },
  }),
);
expect(
  noDescription?.marketingConsent?.lastRevokeActivity?.description == null,
  'upsert: a null description came back as something',
);

// Create makes a CONFIRMED consent whatever state is sent (the SDK's own docstring).
const created = await call('createMarketingConsent', () =>
  sdk.createMarketingConsent({
    details: { type: 'EMAIL', email: 'sdk-created@example.com' },
    state: 'PENDING',
    lastConfirmationActivity: { source: 'FORM', optInLevel: 'SINGLE_CONFIRMATION' },
  }),
);
expect(created?.state === 'CONFIRMED', `create: state ${created?.state}`);

const fetched = await call('getMarketingConsent', () => sdk.getMarketingConsent(created?._id));
expect(fetched?._id === created?._id, 'get: another consent');

const eligibility = await call('getMarketingConsentByIdentifier', () =>
  sdk.getMarketingConsentByIdentifier('EMAIL', { email: 'SDK-created@example.com' }),
);
const link = eligibility?.communicationEligibility?.revokeConfirmationLink;
expect(typeof link === 'string' && link.includes('/_manage-consent/unsubscribe?token='),
  `get-by: revokeConfirmationLink ${JSON.stringify(link)} is not the unsubscribe URL`);
expect(eligibility?.communicationEligibility?.granted === true, 'get-by: not granted');

const unknown = await call('getMarketingConsentByIdentifier', () =>
  sdk.getMarketingConsentByIdentifier('PHONE', { phone: '+1 415 555 0142' }),
);
expect(unknown?.marketingConsent === undefined, 'get-by: a consent for an unknown address');

const updated = await call('updateMarketingConsent', () =>
  sdk.updateMarketingConsent(created?._id, {
    marketingConsent: {
      revision: created?.revision,
      state: 'REVOKED',
      lastRevokeActivity: { source: 'FORM', description: null },
    },
  }),
);
expect(updated?.state === 'REVOKED', `update: state ${updated?.state}`);

const removed = await call('removeMarketingConsent', () =>
  sdk.removeMarketingConsent(
    { type: 'EMAIL', email: 'sdk-pending@example.com' },
    { lastRevokeActivity: { source: 'REVOKE_LINK', description: 'Clicked unsubscribe.' } },
  ),
);
expect(removed?.marketingConsent?.state === 'REVOKED', 'remove: not REVOKED');

const firstPage = await call('queryMarketingConsent', () =>
  sdk.queryMarketingConsent().eq('state', 'REVOKED').limit(2).find(),
);
expect(firstPage?.items?.length === 2 && firstPage.hasNext(), 'query: not a full first page');
const secondPage = await call('queryMarketingConsent', () => firstPage.next());
expect(secondPage?.items?.length === 1 && !secondPage.hasNext(), 'query: not the last page');
const queried = [...(firstPage?.items ?? []), ...(secondPage?.items ?? [])].map((c) => c._id);
expect(new Set(queried).size === 3, `query: ${queried.length} consents, not 3 different ones`);

const bulk = await call('bulkUpsertMarketingConsent', () =>
  sdk.bulkUpsertMarketingConsent([
    { details: { type: 'EMAIL', email: 'sdk-bulk@example.com' }, state: 'NEVER_CONFIRMED' },
    { details: { type: 'EMAIL', email: 'not-an-email' }, state: 'NEVER_CONFIRMED' },
  ]),
);
expect(bulk?.results?.[0]?.marketingConsent?.state === 'NEVER_CONFIRMED', 'bulk: item 0 failed');
expect(typeof bulk?.results?.[1]?.error === 'string', 'bulk: item 1 has no error string');
expect(bulk?.metadata?.totalFailure === 1, 'bulk: not one failure');

await call('deleteMarketingConsent', () => sdk.deleteMarketingConsent(created?._id));
const gone = answers.length;
try {
  await sdk.getMarketingConsent(created?._id);
  problems.push('delete: the consent is still there');
} catch (error) {
  expect(answers[gone]?.status === 404, `delete: get answered ${answers[gone]?.status}`);
}

process.stdout.write(JSON.stringify({ calls, problems }));
