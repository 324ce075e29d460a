import { describe, expect, it } from '@jest/globals';
import { DuoCircuitBreaker } from './duo-circuit-breaker.js';
import { DuoError } from './duo.errors.js';

const down = () => Promise.reject(new DuoError('unavailable', 'down'));
const up = () => Promise.resolve('ok');

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe(DuoCircuitBreaker.name, () => {
  it('should open after the threshold of consecutive outages and then fail fast without calling Duo', async () => {
    const c = clock();
    const breaker = new DuoCircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: c.now });
    for (let i = 0; i < 3; i++) {
      await expect(breaker.run(down)).rejects.toMatchObject({ code: 'unavailable' });
    }
    expect(breaker.state).toBe('open');
    let called = 0;
    await expect(
      breaker.run(() => {
        called++;
        return up();
      }),
    ).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('circuit open'),
    });
    expect(called).toBe(0);
  });

  it('should not open when answers (not outages) interleave with outages', async () => {
    const breaker = new DuoCircuitBreaker({ failureThreshold: 2 });
    await expect(breaker.run(down)).rejects.toThrow();
    await expect(
      breaker.run(() => Promise.reject(new DuoError('invalid_grant', 'refused'))),
    ).rejects.toThrow();
    await expect(breaker.run(down)).rejects.toThrow();
    expect(breaker.state).toBe('closed');
  });

  it('should count Duo 429 answers as outages', async () => {
    const breaker = new DuoCircuitBreaker({ failureThreshold: 2 });
    const limited = () => Promise.reject(new DuoError('rate_limited', '429'));
    await expect(breaker.run(limited)).rejects.toThrow();
    await expect(breaker.run(limited)).rejects.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('should let a single probe through after the cool-down and close when it succeeds', async () => {
    const c = clock();
    const breaker = new DuoCircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: c.now });
    await expect(breaker.run(down)).rejects.toThrow();
    c.advance(1000);
    expect(breaker.state).toBe('half_open');
    let release!: () => void;
    const probe = breaker.run(() => new Promise<string>((r) => (release = () => r('ok'))));
    // A second call while the probe is out fails fast.
    await expect(breaker.run(up)).rejects.toMatchObject({ code: 'unavailable' });
    release();
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    await expect(breaker.run(up)).resolves.toBe('ok');
  });

  it('should reopen for another cool-down when the probe fails', async () => {
    const c = clock();
    const breaker = new DuoCircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: c.now });
    await expect(breaker.run(down)).rejects.toThrow();
    c.advance(1000);
    await expect(breaker.run(down)).rejects.toThrow();
    expect(breaker.state).toBe('open');
    c.advance(999);
    await expect(breaker.run(up)).rejects.toMatchObject({ code: 'unavailable' });
    c.advance(1);
    await expect(breaker.run(up)).resolves.toBe('ok');
    expect(breaker.transitionCount).toBeGreaterThanOrEqual(4);
  });

  it('should refuse with busy at once when the concurrency bound is reached', async () => {
    const breaker = new DuoCircuitBreaker({ maxConcurrent: 2 });
    const releases: (() => void)[] = [];
    const hang = () => new Promise<string>((r) => releases.push(() => r('ok')));
    const a = breaker.run(hang);
    const b = breaker.run(hang);
    expect(breaker.inFlight).toBe(2);
    await expect(breaker.run(up)).rejects.toMatchObject({ code: 'busy' });
    releases.forEach((r) => r());
    await Promise.all([a, b]);
    expect(breaker.inFlight).toBe(0);
    await expect(breaker.run(up)).resolves.toBe('ok');
  });
});
