import {
  createParamDecorator,
  Injectable,
  type ExecutionContext,
  type PipeTransform,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import type { DuoFormFieldsValue } from './duo-csrf.service.js';
import { DuoSignOn } from './duo-sign-on.service.js';

interface HttpPair {
  req: Request;
  res: Response;
}

const HttpPairParam = createParamDecorator((_data: unknown, ctx: ExecutionContext): HttpPair => ({
  req: ctx.switchToHttp().getRequest<Request>(),
  res: ctx.switchToHttp().getResponse<Response>(),
}));

/** Turns the request into its form fields (a pipe, so that Nest injects DuoSignOn). */
@Injectable()
export class DuoFormFieldsPipe implements PipeTransform<HttpPair, DuoFormFieldsValue> {
  constructor(private readonly signOn: DuoSignOn) {}

  transform(value: HttpPair): DuoFormFieldsValue {
    return this.signOn.formFields(value.req, value.res);
  }
}

/**
 * The hidden fields of the sign-on form: `{ csrfToken, html }`. Put `html` inside the form that
 * posts to the route with DuoStartGuard (or DuoSignOn.start); API clients read the same token from
 * the `X-CSRF-Token` response header and send it back as the `X-CSRF-Token` request header. Sets
 * the CSRF cookie when the browser has none. One token serves every form of the app.
 *
 * @example
 * \@SkipMfa() \@Get('login')
 * form(@DuoFormFields() fields: DuoFormFieldsValue) {
 *   return `<form method="post" action="/login">${fields.html}<input name="username"></form>`;
 * }
 */
export const DuoFormFields = (): ParameterDecorator => HttpPairParam(undefined, DuoFormFieldsPipe);
