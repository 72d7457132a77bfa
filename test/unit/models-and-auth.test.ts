import { createServer } from 'node:http';
import {
  BedrockRuntimeClient,
  ConverseStreamCommand,
  ThrottlingException,
} from '@aws-sdk/client-bedrock-runtime';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier } from '../../lambda/adapters/auth/jwt-verifier';
import { BedrockModel, EchoModel, RetryableModelError } from '../../lambda/adapters/models';
import type { ModelEvent } from '../../lambda/services/ports';

async function collect(stream: AsyncIterable<ModelEvent>): Promise<ModelEvent[]> {
  const events: ModelEvent[] = [];
  for await (const e of stream) events.push(e);
  return events;
}

describe('EchoModel', () => {
  it('streams the message back word by word with honest usage, capped at the allowance', async () => {
    const sleeps: number[] = [];
    const model = new EchoModel({ delayMs: 7, sleep: async (ms) => void sleeps.push(ms) });
    const events = await collect(
      model.stream({ prompt: 'one two three', maxOutputTokens: 100, requestId: 'r' }),
    );
    expect(
      events
        .filter((e) => e.type === 'chunk')
        .map((e) => (e as { text: string }).text)
        .join(''),
    ).toBe('Echo: one two three');
    expect(sleeps).toEqual([7, 7, 7]);
    expect(events.at(-1)).toEqual({ type: 'done', usage: { inputTokens: 4, outputTokens: 5 } });
    const capped = await collect(
      model.stream({ prompt: 'x'.repeat(400), maxOutputTokens: 10, requestId: 'r' }),
    );
    expect(capped.at(-1)).toEqual({ type: 'done', usage: { inputTokens: 100, outputTokens: 10 } });
  });

  it("echoes only the prompt, and counts a conversation's earlier turns as input", async () => {
    const model = new EchoModel({ delayMs: 0 });
    const turns = [{ user: 'abcdefgh', assistant: 'Echo: abcdefgh' }]; // 2 + 4 tokens
    const events = await collect(
      model.stream({ prompt: 'one two three', turns, maxOutputTokens: 100, requestId: 'r' }),
    );
    const text = events.flatMap((e) => (e.type === 'chunk' ? [e.text] : [])).join('');
    expect(text).toBe('Echo: one two three');
    expect(events.at(-1)).toEqual({ type: 'done', usage: { inputTokens: 10, outputTokens: 5 } });
  });
});

describe('EchoModel stopped', () => {
  it('stops at once when its signal aborts, even in the middle of its pause between words', async () => {
    const stop = new AbortController();
    // A pause that never ends by itself: only the abort can end it.
    const model = new EchoModel({ delayMs: 1000, sleep: () => new Promise<void>(() => undefined) });
    const events: ModelEvent[] = [];
    const reading = (async () => {
      for await (const e of model.stream({
        prompt: 'one two',
        maxOutputTokens: 100,
        requestId: 'r',
        signal: stop.signal,
      })) {
        events.push(e);
        if (events.length === 1) stop.abort(new Error('the user stopped the reply'));
      }
    })();
    await expect(reading).rejects.toThrow('the user stopped the reply');
    expect(events).toEqual([{ type: 'chunk', text: 'Echo: ' }]);
  });
});

describe('BedrockModel (Converse stream, mocked: Bedrock cannot run here)', () => {
  const bedrock = mockClient(BedrockRuntimeClient);
  afterAll(() => bedrock.restore());

  it('caps output at the allowance, assembles the text and takes usage from the metadata event', async () => {
    bedrock.reset();
    bedrock.on(ConverseStreamCommand).resolves({
      stream: (async function* () {
        yield { messageStart: { role: 'assistant' } };
        yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Hello' } } };
        yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: ' there' } } };
        yield { messageStop: { stopReason: 'max_tokens' } };
        yield {
          metadata: {
            usage: { inputTokens: 12, outputTokens: 2, totalTokens: 14 },
            metrics: { latencyMs: 5 },
          },
        };
      })(),
    } as never);
    const model = new BedrockModel(
      new BedrockRuntimeClient({ region: 'us-east-1' }),
      'anthropic.claude-test',
    );
    const events = await collect(model.stream({ prompt: 'hi', maxOutputTokens: 42, requestId: 'r' }));
    expect(events).toEqual([
      { type: 'chunk', text: 'Hello' },
      { type: 'chunk', text: ' there' },
      { type: 'done', usage: { inputTokens: 12, outputTokens: 2 } },
    ]);
    const input = bedrock.commandCalls(ConverseStreamCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ modelId: 'anthropic.claude-test', inferenceConfig: { maxTokens: 42 } });
  });

  it('hands the stop signal to ConverseStream and passes on nothing read after it aborts', async () => {
    bedrock.reset();
    const stop = new AbortController();
    bedrock.on(ConverseStreamCommand).resolves({
      stream: (async function* () {
        yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Hello' } } };
        stop.abort(new Error('the user stopped the reply'));
        yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: ' there' } } };
        yield { metadata: { usage: { inputTokens: 12, outputTokens: 2, totalTokens: 14 } } };
      })(),
    } as never);
    const model = new BedrockModel(new BedrockRuntimeClient({ region: 'us-east-1' }), 'm');
    const events: ModelEvent[] = [];
    await expect(
      (async () => {
        for await (const e of model.stream({
          prompt: 'hi',
          maxOutputTokens: 5,
          requestId: 'r',
          signal: stop.signal,
        }))
          events.push(e);
      })(),
    ).rejects.toThrow('the user stopped the reply');
    expect(events).toEqual([{ type: 'chunk', text: 'Hello' }]);
    const call = bedrock.commandCalls(ConverseStreamCommand)[0]!;
    // The SDK call got the signal: its HTTP handler destroys the streaming connection on abort.
    expect((call.args as unknown[])[1]).toMatchObject({ abortSignal: stop.signal });
  });

  it("sends a conversation's earlier turns as alternating Converse messages, then the prompt", async () => {
    bedrock.reset();
    bedrock.on(ConverseStreamCommand).resolves({
      stream: (async function* () {
        yield { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Paris' } } };
        yield { metadata: { usage: { inputTokens: 30, outputTokens: 1, totalTokens: 31 } } };
      })(),
    } as never);
    const model = new BedrockModel(new BedrockRuntimeClient({ region: 'us-east-1' }), 'm');
    const turns = [
      { user: 'I am in France.', assistant: 'Noted.' },
      // A reply stopped before its first word: Converse takes no empty text block, the turn is left out.
      { user: 'Tell me a long story', assistant: '' },
      { user: 'Which country?', assistant: 'France.' },
    ];
    const events = await collect(
      model.stream({ prompt: 'Its capital?', turns, maxOutputTokens: 8, requestId: 'r' }),
    );
    expect(events.at(-1)).toEqual({ type: 'done', usage: { inputTokens: 30, outputTokens: 1 } });
    const input = bedrock.commandCalls(ConverseStreamCommand)[0]!.args[0].input;
    expect(input.messages).toEqual([
      { role: 'user', content: [{ text: 'I am in France.' }] },
      { role: 'assistant', content: [{ text: 'Noted.' }] },
      { role: 'user', content: [{ text: 'Which country?' }] },
      { role: 'assistant', content: [{ text: 'France.' }] },
      { role: 'user', content: [{ text: 'Its capital?' }] },
    ]);
  });

  it('turns throttling into a retryable error', async () => {
    bedrock.reset();
    bedrock
      .on(ConverseStreamCommand)
      .rejects(new ThrottlingException({ message: 'slow down', $metadata: {} }));
    const model = new BedrockModel(new BedrockRuntimeClient({ region: 'us-east-1' }), 'm');
    await expect(
      collect(model.stream({ prompt: 'hi', maxOutputTokens: 5, requestId: 'r' })),
    ).rejects.toBeInstanceOf(RetryableModelError);
  });
});

describe('JwtVerifier', () => {
  let server: ReturnType<typeof createServer>;
  let issuer: string;
  let sign: (claims: Record<string, unknown>, alg?: string) => Promise<string>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    sign = (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience('chat')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('accepts an OIDC token from the issuer JWKS, with its sub and tier', async () => {
    const verifier = new JwtVerifier({ mode: 'oidc', issuer, audience: 'chat' });
    expect(await verifier.verify(await sign({ sub: 'carol', tier: 'pro' }))).toEqual({
      ok: true,
      identity: { userId: 'carol', tier: 'pro', expiresAtEpochSeconds: expect.any(Number) },
    });
  });

  it('refuses an OIDC token for another audience, or an HS256 token in OIDC mode', async () => {
    const verifier = new JwtVerifier({ mode: 'oidc', issuer, audience: 'someone-else' });
    expect(await verifier.verify(await sign({ sub: 'carol' }))).toEqual({ ok: false, reason: 'invalid' });
    const hs = await new SignJWT({ sub: 'carol' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('secret'));
    expect(await new JwtVerifier({ mode: 'oidc', issuer, audience: 'chat' }).verify(hs)).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('reads the HS256 secret from Secrets Manager once (mocked: no AWS here)', async () => {
    const secrets = mockClient(SecretsManagerClient);
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'deployed-secret' });
    const verifier = new JwtVerifier({
      mode: 'secret-arn',
      secretArn: 'arn:aws:secretsmanager:x',
      client: new SecretsManagerClient({}),
    });
    const token = await new SignJWT({ sub: 'dave' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('deployed-secret'));
    expect((await verifier.verify(token)).ok).toBe(true);
    expect((await verifier.verify(token)).ok).toBe(true);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    secrets.restore();
  });
});
