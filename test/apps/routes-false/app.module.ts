import {
  Controller,
  Get,
  Header,
  Module,
  Post,
  Req,
  Res,
  type DynamicModule,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { Request, Response } from 'express';
import {
  CurrentMfa,
  DuoFormFields,
  DuoModule,
  DuoSignOn,
  MfaGuard,
  SkipMfa,
  type DuoFormFieldsValue,
  type DuoModuleOptions,
  type MfaSession,
} from '@duo-nest/core';

/** `routes: false`: the app serves both steps itself, one DuoSignOn call per route. */
@Controller('sso')
class SsoController {
  /** How often the app's own callback route ran (the module serves none). */
  static finished = 0;

  constructor(private readonly signOn: DuoSignOn) {}

  /** The start form: DuoSignOn.start checks its CSRF token (and caps) as DuoStartGuard does. */
  @SkipMfa()
  @Get('start')
  @Header('content-type', 'text/html; charset=utf-8')
  form(@DuoFormFields() fields: DuoFormFieldsValue): string {
    return `<form method="post" action="/sso/start">${fields.html}<button>Sign on</button></form>`;
  }

  @SkipMfa()
  @Post('start')
  start(@Req() req: Request, @Res() res: Response): Promise<void> {
    // The app's own first factor would name the user; here a header stands in for it.
    return this.signOn.start(req, res, String(req.headers['x-user'] ?? ''));
  }

  @SkipMfa()
  @Get('back')
  back(@Req() req: Request, @Res() res: Response): Promise<void> {
    SsoController.finished += 1;
    return this.signOn.finish(req, res);
  }

  @Get('me')
  me(@CurrentMfa() session: MfaSession) {
    return { username: session.username };
  }
}

@Module({})
export class RoutesFalseAppModule {
  static readonly controller = SsoController;

  static register(options: DuoModuleOptions): DynamicModule {
    return {
      module: RoutesFalseAppModule,
      imports: [DuoModule.forRoot({ ...options, routes: false })],
      controllers: [SsoController],
      providers: [{ provide: APP_GUARD, useExisting: MfaGuard }],
    };
  }
}
