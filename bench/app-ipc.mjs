// The IPC every bench app process speaks with bench/lib.mjs (startAppProcess): "ready" once it
// listens, profile-start / profile-stop (with BENCH_PROFILE_DIR: a CPU profile of the measured
// window only, written as <name>-<pid>.cpuprofile), and the app's own commands (`handlers`);
// any other command is acknowledged.
import { writeFileSync } from 'node:fs';

/** Answers the bench's IPC; `handlers[cmd]()` returns the fields of the reply. */
export function answerBenchIpc(name, handlers = {}) {
  let profiler;
  process.on('message', async (m) => {
    if (m.cmd === 'profile-start' && process.env.BENCH_PROFILE_DIR) {
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      process.send({ id: m.id });
    } else if (m.cmd === 'profile-stop' && profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      const file = `${process.env.BENCH_PROFILE_DIR}/${name}-${process.pid}.cpuprofile`;
      writeFileSync(file, JSON.stringify(profile));
      profiler.disconnect();
      profiler = undefined;
      process.send({ id: m.id, file });
    } else {
      process.send({ id: m.id, ...(handlers[m.cmd]?.() ?? {}) });
    }
  });
  process.send?.({ ready: true });
}
