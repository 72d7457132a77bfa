import { microUsdToUsd } from '../../lambda/core/models';
import type { SimulationResult } from './result';
import type { TrafficRequest } from './traffic';

/** The counts of one simulation, folded into its result at the end. */
export class Tally {
  private directly = 0;
  private afterQueueing = 0;
  private queuedCount = 0;
  private readonly refusedBy = new Map<string, number>();
  private readonly waits: number[] = [];
  private inputTokens = 0;
  private outputTokens = 0;
  private costMicroUsd = 0;
  private readonly users = new Map<string, { refused: number; queued: number }>();

  admitted(_r: TrafficRequest, afterQueueing: boolean, waitMs: number): void {
    if (afterQueueing) {
      this.afterQueueing++;
      this.waits.push(waitMs);
    } else this.directly++;
  }

  queued(r: TrafficRequest): void {
    this.queuedCount++;
    this.user(r.userId).queued++;
  }

  refused(r: TrafficRequest, reason: string): void {
    this.refusedBy.set(reason, (this.refusedBy.get(reason) ?? 0) + 1);
    this.user(r.userId).refused++;
  }

  used(inputTokens: number, outputTokens: number, costMicroUsd: number): void {
    this.inputTokens += inputTokens;
    this.outputTokens += outputTokens;
    this.costMicroUsd += costMicroUsd;
  }

  result(requests: number): SimulationResult {
    const refused = Object.fromEntries([...this.refusedBy.entries()].sort(([a], [b]) => a.localeCompare(b)));
    const waits = [...this.waits].sort((a, b) => a - b);
    const mostAffected = [...this.users.entries()]
      .map(([userId, u]) => ({ userId, ...u }))
      .sort((a, b) => b.refused + b.queued - (a.refused + a.queued) || a.userId.localeCompare(b.userId))
      .slice(0, 10);
    return {
      requests,
      admitted: {
        total: this.directly + this.afterQueueing,
        directly: this.directly,
        afterQueueing: this.afterQueueing,
      },
      queued: this.queuedCount,
      refused,
      refusedTotal: [...this.refusedBy.values()].reduce((a, b) => a + b, 0),
      waitMs: waits.length > 0 ? { p50: rank(waits, 0.5), p99: rank(waits, 0.99) } : null,
      tokens: { input: this.inputTokens, output: this.outputTokens },
      costUsd: microUsdToUsd(this.costMicroUsd),
      mostAffected,
    };
  }

  private user(userId: string): { refused: number; queued: number } {
    let u = this.users.get(userId);
    if (!u) {
      u = { refused: 0, queued: 0 };
      this.users.set(userId, u);
    }
    return u;
  }
}

/** The nearest-rank percentile of sorted values. */
function rank(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}
