import { describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../lambda/adapters/runtime/edge-config';
import { parseFunctionConfig } from '../../lambda/config';
import { ENV } from '../../lambda/core/resources';

const TABLES_ENV = { [ENV.limitsTable]: 'L', [ENV.connectionsTable]: 'C' };

/** The fields both parsers produce, to hold the small one to the full one. */
function shared(config: {
  tables: object;
  dynamodbEndpoint?: string;
  connectLimitPerMinute: number;
  limiterTimeoutMs: number;
}) {
  const { tables, dynamodbEndpoint, connectLimitPerMinute, limiterTimeoutMs } = config;
  return { tables, dynamodbEndpoint, connectLimitPerMinute, limiterTimeoutMs };
}

describe('parseEdgeConfig', () => {
  it.each([
    ['no settings', TABLES_ENV],
    [
      'every setting',
      {
        ...TABLES_ENV,
        [ENV.connectLimitPerMinute]: '7',
        [ENV.limiterTimeoutMs]: '350',
        [ENV.dynamodbEndpoint]: 'http://127.0.0.1:4567',
      },
    ],
    ['blank variables', { ...TABLES_ENV, [ENV.connectLimitPerMinute]: '', [ENV.dynamodbEndpoint]: '' }],
  ])('reads %s as lambda/config.ts does for $connect', (_, env) => {
    expect(shared(parseEdgeConfig('connect', env))).toEqual(shared(parseFunctionConfig('connect', env)));
  });

  it('needs only the connections table for $disconnect', () => {
    expect(parseEdgeConfig('disconnect', { [ENV.connectionsTable]: 'C' }).tables).toEqual({
      connections: 'C',
    });
  });

  it.each([
    [{ [ENV.connectionsTable]: 'C' }, /LIMITS_TABLE_NAME is required/],
    [{ ...TABLES_ENV, [ENV.connectLimitPerMinute]: '0' }, /CONNECT_LIMIT_PER_MINUTE/],
    [{ ...TABLES_ENV, [ENV.connectLimitPerMinute]: '2.5' }, /CONNECT_LIMIT_PER_MINUTE/],
    [{ ...TABLES_ENV, [ENV.limiterTimeoutMs]: 'soon' }, /LIMITER_TIMEOUT_MS/],
    [{ ...TABLES_ENV, [ENV.dynamodbEndpoint]: 'not a url' }, /DYNAMODB_ENDPOINT/],
  ])('refuses %j, naming the variable, as the full parser does', (env, message) => {
    expect(() => parseEdgeConfig('connect', env)).toThrow(message);
    expect(() => parseFunctionConfig('connect', env)).toThrow(message);
  });
});
