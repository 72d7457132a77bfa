import { describe, expect, it } from 'vitest';
import { BROWSER, JAVA, mayRunWith, TMUX } from '../support/required-tools';

describe('mayRunWith', () => {
  it('runs the tests when the tool is there, whatever REQUIRE_* says', () => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    expect(mayRunWith(JAVA, true, { env: { REQUIRE_JAVA: '1' }, warn })).toBe(true);
    expect(mayRunWith(JAVA, true, { env: {}, warn })).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('skips with a warning naming the tool, the tests and the install when the tool is missing', () => {
    const warnings: string[] = [];
    expect(mayRunWith(TMUX, false, { env: {}, warn: (m) => warnings.push(m) })).toBe(false);
    expect(warnings).toEqual([
      'terminal client test NOT RUN: no tmux on this machine (apt-get install tmux); set REQUIRE_TMUX=1 to fail instead of skipping',
    ]);
  });

  it('fails instead of skipping when REQUIRE_<TOOL>=1 and the tool is missing', () => {
    expect(() =>
      mayRunWith(BROWSER, false, { why: 'no Chromium at /usr/bin/chromium', env: { REQUIRE_BROWSER: '1' } }),
    ).toThrow(
      'browser tests NOT RUN: no Chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM_PATH); REQUIRE_BROWSER=1 requires it',
    );
    expect(() => mayRunWith(JAVA, false, { env: { REQUIRE_JAVA: '1', REQUIRE_TMUX: '1' } })).toThrow(
      /DynamoDB Local contract tests NOT RUN: no java .*openjdk-17-jre-headless.*REQUIRE_JAVA=1/,
    );
    // Only its own variable requires a tool.
    expect(mayRunWith(JAVA, false, { env: { REQUIRE_TMUX: '1' }, warn: () => undefined })).toBe(false);
  });
});
