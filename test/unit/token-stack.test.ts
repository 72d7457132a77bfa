import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { StackOutputError } from '../../local/admin/stack-outputs';
import { mintStackToken } from '../../local/dev-tokens';

/** `npm run token -- --user U --stack NAME`, with CloudFormation and Secrets Manager mocked (no account here). */
describe('mintStackToken', () => {
  const cfn = mockClient(CloudFormationClient);
  const secrets = mockClient(SecretsManagerClient);
  const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:JwtSecret-AbCdEf';
  const secret = 'the-stack-s-own-64-character-secret-from-secrets-manager-0123456';
  afterEach(() => {
    cfn.reset();
    secrets.reset();
  });

  function stackWith(outputs: Record<string, string>): void {
    cfn.on(DescribeStacksCommand, { StackName: 'ChatLimiter' }).resolves({
      Stacks: [
        {
          StackName: 'ChatLimiter',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
        },
      ],
    });
  }

  it("signs with the secret the stack's JwtSecretArn output names, with sub, tier and exp", async () => {
    stackWith({
      WebSocketUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod',
      JwtSecretArn: secretArn,
    });
    secrets.on(GetSecretValueCommand, { SecretId: secretArn }).resolves({ SecretString: secret });
    const nowMs = Date.now();
    const token = await mintStackToken({
      stackName: 'ChatLimiter',
      region: 'eu-west-1',
      userId: 'alice',
      tier: 'pro',
      expiresInSeconds: 3600,
      nowMs,
    });
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret));
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: 'alice', tier: 'pro', exp: Math.floor(nowMs / 1000) + 3600 });
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expect(secrets.commandCalls(GetSecretValueCommand)[0]!.args[0].input).toEqual({ SecretId: secretArn });
  });

  it('makes a token another secret does not verify', async () => {
    stackWith({ JwtSecretArn: secretArn });
    secrets.on(GetSecretValueCommand).resolves({ SecretString: secret });
    const token = await mintStackToken({ stackName: 'ChatLimiter', region: 'eu-west-1', userId: 'bob' });
    await expect(jwtVerify(token, new TextEncoder().encode('some-other-secret'))).rejects.toThrow();
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret));
    expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('says so when the stack has no JwtSecretArn output (OIDC mode), reading no secret', async () => {
    stackWith({ WebSocketUrl: 'wss://abc.execute-api.eu-west-1.amazonaws.com/prod' });
    const minted = mintStackToken({ stackName: 'ChatLimiter', region: 'eu-west-1', userId: 'carol' });
    await expect(minted).rejects.toThrow(StackOutputError);
    await expect(minted).rejects.toThrow('stack ChatLimiter has no JwtSecretArn output');
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('passes on what AWS says when the caller may not read the secret', async () => {
    stackWith({ JwtSecretArn: secretArn });
    secrets.on(GetSecretValueCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: secretsmanager:GetSecretValue'), {
        name: 'AccessDeniedException',
      }),
    );
    await expect(
      mintStackToken({ stackName: 'ChatLimiter', region: 'eu-west-1', userId: 'dave' }),
    ).rejects.toThrow('not authorized to perform: secretsmanager:GetSecretValue');
  });
});
