#!/usr/bin/env node
// The `duo-simulator` bin: `npx duo-simulator --port 4000 [options]` (`npm run simulator` here).
import { parseCli, USAGE } from './cli.js';
import { startSimulator } from './index.js';
import type { SimulatorOptions } from './types.js';

async function main(): Promise<void> {
  let options: SimulatorOptions | 'help';
  try {
    options = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(
      `simulator: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`,
    );
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let sim;
  try {
    sim = await startSimulator(options);
  } catch (err) {
    process.stderr.write(
      `simulator: cannot start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(2);
  }
  // The public host, not the socket: aud and iss come from it (http:// marks the test-only mode).
  const apiHost = options.tls ? sim.apiHost : sim.publicOrigin;
  const lines = [`# Duo simulator listening on ${sim.url} (control API: ${sim.url}/__sim/state)`];
  if (sim.publicOrigin !== sim.url) {
    lines.push(`# public host ${sim.apiHost}: clients name it, and reach ${sim.url}`);
  }
  for (const app of sim.applications.slice(1)) {
    // Their secrets came from the applications file: never printed.
    lines.push(`# application ${JSON.stringify(app.name)}: client id ${app.clientId}`);
  }
  lines.push(`DUO_CLIENT_ID=${sim.clientId}`);
  if (options.clientSecret === undefined && options.applications === undefined) {
    // Generated test credentials: print them so the app can be pointed at this simulator.
    lines.push(`DUO_CLIENT_SECRET=${sim.clientSecret}`);
  }
  lines.push(`DUO_API_HOST=${apiHost}`);
  // The Admin API (authentication log) credentials, printed the same way.
  lines.push(`DUO_ADMIN_INTEGRATION_KEY=${sim.adminIntegrationKey}`);
  if (options.adminSecretKey === undefined) {
    lines.push(`DUO_ADMIN_SECRET_KEY=${sim.adminSecretKey}`);
  }
  lines.push(`DUO_ADMIN_API_HOST=${apiHost}`);
  process.stdout.write(`${lines.join('\n')}\n`);

  let closing = false;
  const stop = (signal: string) => {
    if (closing) {
      return;
    }
    closing = true;
    process.stdout.write(`# ${signal}: stopping\n`);
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

await main();
