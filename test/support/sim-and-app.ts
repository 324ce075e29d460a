import { DUO_OPTIONS, type NormalizedDuoModuleOptions } from '@duo-nest/core/internal';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '@duo-nest/simulator';
import type { SecuritySetupOptions } from '../../src/security/security.setup.js';
import { simulatorEnv, startApp, type RunningApp } from './app-harness.js';

/** What {@link startSimAndApp} boots. */
export interface SimAndAppOptions {
  /**
   * The simulator's options, over `{ port: 0, auto: 'allow' }`. `auto: undefined` serves the prompt
   * page (browser tests that click Approve).
   */
  sim?: SimulatorOptions;
  /** The app's environment, over the simulator's DUO_* variables (startApp's defaults beneath). */
  env?: Record<string, string | undefined>;
  /** startApp's setup options (a log destination, say). */
  app?: SecuritySetupOptions;
}

/** A running simulator and the real app configured against it. */
export interface SimAndApp {
  sim: RunningSimulator;
  app: RunningApp;
  /** The app's base URL. */
  url: string;
  /** Closes the app, the Redis connection the app module opened (if any), then the simulator. */
  close(): Promise<void>;
}

/**
 * The boot of most e2e files: the in-process simulator on port 0, then the whole reference app
 * pointed at it. If the app fails to boot, the simulator is closed before the error is rethrown.
 */
export async function startSimAndApp(options: SimAndAppOptions = {}): Promise<SimAndApp> {
  const sim = await startSimulator({ port: 0, auto: 'allow', ...options.sim });
  let app: RunningApp;
  try {
    app = await startApp({ ...simulatorEnv(sim), ...options.env }, options.app);
  } catch (err) {
    await sim.close();
    throw err;
  }
  return {
    sim,
    app,
    url: app.url,
    close: async () => {
      // The app module creates the Redis connection and does not own it: stop its reconnect loop.
      const redis = app.app.get<NormalizedDuoModuleOptions>(DUO_OPTIONS).redis;
      await app.close();
      redis?.disconnect();
      await sim.close();
    },
  };
}
