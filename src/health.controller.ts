import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DuoHealthService, Public } from './duo/index.js';

/** Liveness plus Duo's last known health (cached; /health never waits on Duo). */
@Controller('health')
export class HealthController {
  constructor(private readonly duo: DuoHealthService) {}

  @Public()
  @Get()
  health(@Res({ passthrough: true }) res: Response) {
    res.setHeader('Cache-Control', 'no-store');
    const last = this.duo.lastKnown;
    return {
      status: 'ok',
      duo: last
        ? {
            ok: last.ok,
            checkedAt: new Date(last.checkedAt).toISOString(),
            ...(last.ok ? {} : { error: last.error.code }),
          }
        : { ok: null },
    };
  }
}
