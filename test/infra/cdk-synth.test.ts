import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../lambda/core/resources';

/** The CLI path a user takes: `npx cdk synth`, bundling included, offline, cdk-nag attached. */
describe('npx cdk synth', () => {
  it('synthesizes the stack with bundled functions and no cdk-nag errors', () => {
    const out = mkdtempSync(join(tmpdir(), 'cdk-out-'));
    execFileSync('npx', ['cdk', 'synth', '--no-notices', '-q', '-o', out], {
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
      stdio: 'pipe',
      timeout: 180_000,
    });
    const template = JSON.parse(readFileSync(join(out, 'ChatLimiter.template.json'), 'utf8'));
    expect(
      Object.values(template.Resources).filter(
        (r) => (r as { Type: string }).Type === 'AWS::Lambda::Function',
      ),
    ).toHaveLength(Object.keys(FUNCTIONS).length);
    const report = JSON.parse(readFileSync(join(out, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports[0].violations).toEqual([]);
    for (const suppressed of report.pluginReports[0].suppressedViolations ?? []) {
      expect(suppressed.ruleName).toMatch(/AwsSolutions-(APIG4|IAM4|IAM5|L1|SMG4)/);
    }
    expect(existsSync(out)).toBe(true);
  }, 200_000);
});
