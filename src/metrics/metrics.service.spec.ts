import { describe, expect, it } from '@jest/globals';
import type { DuoAuthEvent } from '@duo-nest/core';
import { boundedLabel, MetricsService } from './metrics.service.js';

function succeeded(factor: string): DuoAuthEvent {
  return {
    type: 'mfa_succeeded',
    outcome: 'success',
    username: 'mallory',
    clientIp: '203.0.113.9',
    result: { tokens: { auth_context: { factor } } },
  } as unknown as DuoAuthEvent;
}

describe('MetricsService', () => {
  it('should map values outside the allowed set to other when labelling', () => {
    const allowed = new Set(['a', 'b']);
    expect(boundedLabel('a', allowed)).toBe('a');
    expect(boundedLabel('zzz', allowed)).toBe('other');
    expect(boundedLabel(42, allowed)).toBe('other');
    expect(boundedLabel(undefined, allowed)).toBe('none');
  });

  it('should keep label cardinality bounded when events carry unknown reasons and factors', async () => {
    const metrics = new MetricsService();
    for (let i = 0; i < 50; i++) {
      metrics.recordEvent(succeeded(`factor-${i}`));
      metrics.recordEvent({
        type: 'mfa_failed',
        outcome: 'failure',
        reason: `reason-${i}`,
      });
    }
    metrics.recordEvent(succeeded('duo_push'));
    const text = await metrics.registry.metrics();
    const finished = text
      .split('\n')
      .filter((l) => l.startsWith('duo_nest_signons_finished_total{'));
    expect(finished.sort()).toEqual([
      'duo_nest_signons_finished_total{outcome="failed",reason="other",factor="none"} 50',
      'duo_nest_signons_finished_total{outcome="succeeded",reason="none",factor="duo_push"} 1',
      'duo_nest_signons_finished_total{outcome="succeeded",reason="none",factor="other"} 50',
    ]);
    expect(text).not.toContain('mallory');
    expect(text).not.toContain('203.0.113.9');
    expect(text).not.toContain('factor-');
  });

  it.each([
    ['store_record_invalid', 'session_mac'],
    ['store_record_invalid', 'pending_login_shape'],
    ['session_invalid', 'cookie_forged'],
    ['input_validation_failed', 'invalid_username'],
    ['input_validation_failed', 'store_validation'],
    ['input_validation_failed', 'csrf_no_token'],
    ['rate_limited', 'login_user'],
  ] as const)(
    'should label a %s event with reason %s by its reason, not other',
    async (type, reason) => {
      const metrics = new MetricsService();
      metrics.recordEvent({ type, outcome: 'failure', reason });
      const text = await metrics.registry.metrics();
      expect(text).toContain(`type="${type}",outcome="failure",reason="${reason}"`);
      expect(text).not.toContain('reason="other"');
    },
  );

  it('should count the event and still run the sink when the sink is wrapped', async () => {
    const metrics = new MetricsService();
    const seen: string[] = [];
    const sink = metrics.countingSink((e) => {
      seen.push(e.type);
      throw new Error('audit down');
    });
    await expect(sink({ type: 'mfa_started', outcome: 'info' })).rejects.toThrow('audit down');
    expect(seen).toEqual(['mfa_started']);
    expect(await metrics.registry.metrics()).toMatch(/^duo_nest_signons_started_total 1$/m);
  });

  it('should label Duo calls by endpoint and bounded result when observed', async () => {
    const metrics = new MetricsService();
    metrics.duoCallObserver('token', 'success', 12);
    metrics.duoCallObserver('health_check', 'unavailable', 5000);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /^duo_nest_duo_call_duration_seconds_count\{endpoint="token",result="success"\} 1$/m,
    );
    expect(text).toMatch(
      /^duo_nest_duo_call_duration_seconds_bucket\{le="0.025",endpoint="token",result="success"\} 1$/m,
    );
    expect(text).toMatch(
      /^duo_nest_duo_call_duration_seconds_sum\{endpoint="health_check",result="unavailable"\} 5$/m,
    );
  });
});
