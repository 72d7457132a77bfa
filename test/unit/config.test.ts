import { describe, expect, it } from 'vitest';
import { parseFunctionConfig } from '../../lambda/config';
import { ENV } from '../../lambda/core/resources';

const base = {
  [ENV.limitsTable]: 'Limits',
  [ENV.connectionsTable]: 'Connections',
  [ENV.requestsTable]: 'Requests',
  [ENV.requestQueueUrl]: 'http://127.0.0.1:9324/000000000000/q.fifo',
  [ENV.wsManagementEndpoint]: 'http://127.0.0.1:3001/local',
  [ENV.replyFunctionName]: 'ReplyRunner',
};

describe('parseFunctionConfig', () => {
  it('applies the documented defaults', () => {
    const config = parseFunctionConfig('message', base);
    expect(config).toMatchObject({
      failPolicy: 'open',
      limiterTimeoutMs: 2000,
      breakerSilenceMs: 3000,
      connectLimitPerMinute: 20,
      maxMessageChars: 8000,
      maxQueuedPerUser: 10,
      maxQueueWaitSeconds: 900,
      model: { kind: 'echo', echoDelayMs: 20, echoRepeat: 1 },
    });
    expect(config.tiers.free.dailyTokens).toBe(100_000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('requires exactly the resources the function is given in FUNCTIONS', () => {
    const connect = parseFunctionConfig('connect', { [ENV.limitsTable]: 'L', [ENV.connectionsTable]: 'C' });
    expect(connect.tables).toEqual({ limits: 'L', connections: 'C' });
    expect(connect.requestQueueUrl).toBeUndefined();
    expect(() => parseFunctionConfig('message', { ...base, [ENV.requestQueueUrl]: '' })).toThrow(
      ENV.requestQueueUrl,
    );
  });

  it('rejects malformed values with the variable name', () => {
    expect(() => parseFunctionConfig('message', { ...base, [ENV.failPolicy]: 'sideways' })).toThrow(
      ENV.failPolicy,
    );
    expect(() => parseFunctionConfig('message', { ...base, [ENV.maxQueuedPerUser]: '-1' })).toThrow(
      ENV.maxQueuedPerUser,
    );
    expect(() =>
      parseFunctionConfig('message', { ...base, [ENV.limitsConfig]: '{"tiers":{"gold":{}}}' }),
    ).toThrow(/limits configuration/);
  });

  it('requires a model id for bedrock', () => {
    expect(() => parseFunctionConfig('message', { ...base, [ENV.model]: 'bedrock' })).toThrow(
      ENV.bedrockModelId,
    );
    const config = parseFunctionConfig('message', {
      ...base,
      [ENV.model]: 'bedrock',
      [ENV.bedrockModelId]: 'm',
    });
    expect(config.model).toEqual({ kind: 'bedrock', modelId: 'm' });
    // A Bedrock model caps every output allowance at its maximum output (4096 unless configured).
    expect(config.modelMaxOutputTokens).toBe(4096);
    expect(parseFunctionConfig('message', base).modelMaxOutputTokens).toBeUndefined();
  });

  it('requires the reply runner of the functions that hand replies to it', () => {
    const { [ENV.replyFunctionName]: _name, ...withoutRunner } = base;
    expect(() => parseFunctionConfig('message', withoutRunner)).toThrow(ENV.replyFunctionName);
    expect(parseFunctionConfig('message', base).replyFunctionName).toBe('ReplyRunner');
  });
});
